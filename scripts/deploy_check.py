"""Before `make deploy` builds anything: which account, caller and region it will deploy to, or why
it cannot (no credentials, expired ones, no way to reach AWS). `make deploy` runs it with the
project's Python (boto3 is a runtime dependency): `.venv/bin/python scripts/deploy_check.py --stack S --region R`.

Exit 0 with one line saying where the stack goes; exit 1 with what to do, before minutes of build."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)

    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = botocore.session.Session()
    try:
        identity = session.create_client("sts", region_name=args.region).get_caller_identity()
    except NoCredentialsError:
        print("make deploy: no AWS credentials found (environment, profile, SSO or instance role). Configure "
              "some first, e.g. `aws configure`, `aws sso login --profile P` with AWS_PROFILE=P, or "
              "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; nothing was built.", file=sys.stderr)
        return 1
    except ClientError as error:
        print(f"make deploy: AWS refused the credentials ({error.response['Error'].get('Code')}: "
              f"{error.response['Error'].get('Message')}); nothing was built.", file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"make deploy: cannot check the credentials with AWS STS in {args.region} ({error}); "
              "nothing was built.", file=sys.stderr)
        return 1
    print(f"make deploy: stack {args.stack} in region {args.region}, account {identity['Account']}, "
          f"as {identity['Arn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
