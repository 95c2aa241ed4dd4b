// Who the person is to the API, and which controls the page shows them.
//
// Sign-in modes (config.json, from the server): "open" (local run: nobody), "principal" (local
// AUTH=on: the person names the X-CS-Principal), "sigv4" (local AUTH=sigv4) and "keys" (deployed
// without the user pool): the person gives AWS credentials; "cognito" (deployed with the user pool):
// user name and password -> Cognito tokens -> the identity pool's temporary credentials for the
// role of the person's group. In every mode but "open" the API itself decides (401 / 403); the
// role here only chooses which controls to show. Credentials live in sessionStorage (this tab
// only), never in the URL.
import { AwsV4Signer } from './vendor/aws4fetch.esm.js';

const STORE = 'journey-viewer.access';
export const ROLES = ['Administrator', 'Supervisor'];

export class Access {
  constructor(config) {
    this.config = config;
    this.mode = config.sign_in;
    this.region = config.region || 'us-east-1';
    let saved = {};
    try { saved = JSON.parse(sessionStorage.getItem(STORE) || '{}'); } catch { saved = {}; }
    this.state = saved.mode === this.mode ? saved : { mode: this.mode };
    this.state.role ??= 'Administrator';
    this.listeners = [];
  }

  save() {
    sessionStorage.setItem(STORE, JSON.stringify(this.state));
    for (const listener of this.listeners) listener();
  }

  onChange(listener) { this.listeners.push(listener); }

  /** The role whose controls the page shows: the Cognito group when deployed, else the person's choice. */
  get role() {
    if (this.mode === 'cognito') {
      const groups = this.state.groups || [];
      return groups.includes('Administrator') ? 'Administrator' : groups.includes('Supervisor') ? 'Supervisor' : null;
    }
    return this.state.role;
  }

  get canChangeRole() { return this.mode !== 'cognito'; }

  setRole(role) {
    if (!ROLES.includes(role) || !this.canChangeRole) return;
    this.state.role = role;
    this.save();
  }

  get principal() { return this.state.principal || ''; }

  setPrincipal(name) { this.state.principal = name.trim(); this.save(); }

  setKeys(accessKeyId, secretAccessKey, sessionToken) {
    this.state.credentials = { accessKeyId: accessKeyId.trim(), secretAccessKey: secretAccessKey.trim(),
      sessionToken: (sessionToken || '').trim() || undefined };
    this.save();
  }

  get signsRequests() { return ['sigv4', 'keys', 'cognito'].includes(this.mode); }

  /** True when the page can call the API (signed in, or a mode that needs nothing). */
  get ready() {
    if (this.mode === 'open') return true;
    if (this.mode === 'principal') return Boolean(this.principal);
    return Boolean(this.state.credentials?.accessKeyId && this.state.credentials?.secretAccessKey);
  }

  /** Words for the header: who calls the API. */
  describe() {
    switch (this.mode) {
      case 'open': return 'Local run, open access: no sign-in needed.';
      case 'principal': return this.principal ? `Calling as principal ${this.principal} (X-CS-Principal).` : 'Name a principal to call the API.';
      case 'cognito': return this.state.username ? `Signed in as ${this.state.username} (${this.role || 'no group'}).` : 'Not signed in.';
      default: return this.state.credentials?.accessKeyId
        ? `Signing requests with access key ${this.state.credentials.accessKeyId} (SigV4).`
        : 'Give AWS credentials to sign requests.';
    }
  }

  /** Add what identifies the caller to a request: a header, or a SigV4 signature. */
  async authorise(method, url, headers, body) {
    if (this.mode === 'principal') {
      if (this.principal) headers['X-CS-Principal'] = this.principal;
      return { url, headers };
    }
    if (!this.signsRequests) return { url, headers };
    if (this.mode === 'cognito') await this.refreshIfNeeded();
    const credentials = this.state.credentials;
    if (!credentials) return { url, headers };
    const signer = new AwsV4Signer({ method, url, headers, body, service: 'execute-api', region: this.region,
      accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken });
    const signed = await signer.sign();
    return { url: signed.url.toString(), headers: Object.fromEntries(signed.headers.entries()) };
  }

  /** The curl options that identify the caller, without any secret. */
  curlOptions() {
    if (this.mode === 'principal' && this.principal) return [`-H ${shellQuote(`X-CS-Principal: ${this.principal}`)}`];
    if (!this.signsRequests) return [];
    const options = [`--aws-sigv4 'aws:amz:${this.region}:execute-api'`,
      '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"'];
    if (this.state.credentials?.sessionToken) options.push('-H "X-Amz-Security-Token: $AWS_SESSION_TOKEN"');
    return options;
  }

  signOut() {
    this.state = { mode: this.mode, role: this.state.role };
    this.save();
  }

  // ---------------------------------------------------------------- Cognito (deployed sign-in)

  cognitoEndpoints() {
    const given = this.config.cognito?.endpoints;
    if (given?.length === 2) return given;
    return [`https://cognito-idp.${this.region}.amazonaws.com/`, `https://cognito-identity.${this.region}.amazonaws.com/`];
  }

  async cognitoCall(endpoint, target, body) {
    const response = await fetch(endpoint, { method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target } });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || data.Message || `sign-in failed (${response.status})`);
    return data;
  }

  /** User name and password: tokens, or {challenge: "NEW_PASSWORD_REQUIRED"} on a first sign-in. */
  async signIn(username, password) {
    const [userPools] = this.cognitoEndpoints();
    const reply = await this.cognitoCall(userPools, 'AWSCognitoIdentityProviderService.InitiateAuth', {
      AuthFlow: 'USER_PASSWORD_AUTH', ClientId: this.config.cognito.client_id,
      AuthParameters: { USERNAME: username, PASSWORD: password } });
    return this.afterAuth(username, reply);
  }

  async setNewPassword(newPassword) {
    const [userPools] = this.cognitoEndpoints();
    const reply = await this.cognitoCall(userPools, 'AWSCognitoIdentityProviderService.RespondToAuthChallenge', {
      ChallengeName: 'NEW_PASSWORD_REQUIRED', ClientId: this.config.cognito.client_id, Session: this.pending.session,
      ChallengeResponses: { USERNAME: this.pending.username, NEW_PASSWORD: newPassword } });
    return this.afterAuth(this.pending.username, reply);
  }

  async afterAuth(username, reply) {
    if (reply.ChallengeName) {
      this.pending = { username, session: reply.Session };
      return { challenge: reply.ChallengeName };
    }
    const result = reply.AuthenticationResult;
    this.state.username = username;
    this.state.idToken = result.IdToken;
    if (result.RefreshToken) this.state.refreshToken = result.RefreshToken;
    this.state.groups = tokenClaims(result.IdToken)['cognito:groups'] || [];
    await this.identityCredentials();
    this.save();
    return { signedIn: true };
  }

  async identityCredentials() {
    const [, identities] = this.cognitoEndpoints();
    const { user_pool_id: pool, identity_pool_id: identityPool } = this.config.cognito;
    const logins = { [`cognito-idp.${this.region}.amazonaws.com/${pool}`]: this.state.idToken };
    const { IdentityId } = await this.cognitoCall(identities, 'AWSCognitoIdentityService.GetId',
      { IdentityPoolId: identityPool, Logins: logins });
    const { Credentials } = await this.cognitoCall(identities, 'AWSCognitoIdentityService.GetCredentialsForIdentity',
      { IdentityId, Logins: logins });
    this.state.credentials = { accessKeyId: Credentials.AccessKeyId, secretAccessKey: Credentials.SecretKey,
      sessionToken: Credentials.SessionToken };
    this.state.expires = Number(Credentials.Expiration) * 1000;
  }

  /** Temporary credentials last an hour: renew them (and the ID token) a minute before they end,
   *  once for all the calls that need them at the same time. */
  refreshIfNeeded() {
    if (!this.state.expires || Date.now() < this.state.expires - 60000 || !this.state.refreshToken) return undefined;
    this.renewing ??= this.renew().finally(() => { this.renewing = null; });
    return this.renewing;
  }

  async renew() {
    const [userPools] = this.cognitoEndpoints();
    const reply = await this.cognitoCall(userPools, 'AWSCognitoIdentityProviderService.InitiateAuth', {
      AuthFlow: 'REFRESH_TOKEN_AUTH', ClientId: this.config.cognito.client_id,
      AuthParameters: { REFRESH_TOKEN: this.state.refreshToken } });
    this.state.idToken = reply.AuthenticationResult.IdToken;
    this.state.groups = tokenClaims(this.state.idToken)['cognito:groups'] || [];
    await this.identityCredentials();
    this.save();
  }
}

function tokenClaims(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent([...atob(payload)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

export function shellQuote(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`;
}
