// An upstream OpenID provider for Consentry's tests: panva's oidc-provider on loopback, with its development
// sign-in and consent pages. Everything it needs comes from the environment:
//   PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, and ACCOUNTS: {"login": {"email", "email_verified", "name"}}.
// Whoever signs in with a login listed in ACCOUNTS (any password) is that account; its login is its `sub`.
import Provider from 'oidc-provider';

const { PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const issuer = `http://127.0.0.1:${PORT}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false, // the ID token carries the email claims too
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['consentry-tests-only'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.proxy = false;
const server = provider.listen(Number(PORT), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
