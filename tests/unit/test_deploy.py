"""`make deploy` (README, Deploy): it says where it deploys and checks the credentials before it
builds anything; the region defaults to AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1."""

from __future__ import annotations

import os
import subprocess
import sys

from local.template import ROOT


def _planned(**env: str) -> list[str]:
    """The commands `make deploy` would run (make -n), with the given environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "REGION")}
    done = subprocess.run(["make", "-n", "--no-print-directory", "deploy", "STACK=cs-test"], cwd=ROOT,
                          capture_output=True, text=True, env={**clean, **env}, check=True)
    return done.stdout.splitlines()


def test_credentials_are_checked_before_the_build():
    lines = _planned()
    check = next(i for i, line in enumerate(lines) if "scripts/deploy_check.py" in line)
    build = next(i for i, line in enumerate(lines) if line.endswith("sam build"))
    assert check < build
    # ...and before the SAM CLI's first installation (make -n prints it when build/sam-cli is absent).
    install = [i for i, line in enumerate(lines) if "aws-sam-cli" in line or "venv build/sam-cli" in line]
    assert all(check < i for i in install), lines
    assert "--stack cs-test --region us-east-1" in lines[check]


def test_the_region_comes_from_the_environment_before_the_default():
    assert any("sam deploy --stack-name cs-test --region us-east-1" in line for line in _planned())
    assert any("--region eu-west-3" in line for line in _planned(AWS_DEFAULT_REGION="eu-west-3"))
    assert any("--region eu-north-1" in line for line in _planned(AWS_DEFAULT_REGION="eu-west-3",
                                                                 AWS_REGION="eu-north-1"))
    assert any("--region ap-south-1" in line for line in _planned(AWS_REGION="eu-north-1", REGION="ap-south-1"))


def test_without_credentials_the_check_stops_with_what_to_do():
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([sys.executable, "scripts/deploy_check.py", "--stack", "s", "--region", "eu-west-1"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "no AWS credentials" in done.stderr and "nothing was built" in done.stderr
