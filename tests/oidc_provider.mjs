// A real OpenID provider for the single sign-on tests: the certified `oidc-provider`
// package on 127.0.0.1, with one client (ketacare) and one test account.
//
// Environment: PORT, REDIRECT_URI (the client's callback), CLIENT_SECRET, and ACCOUNT
// (JSON claims of the test account: sub, preferred_username, name, groups). The
// provider's development login form is used (it takes the account id as the login).
// Prints "ready <issuer>" once it listens; stops on SIGTERM.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const account = JSON.parse(process.env.ACCOUNT);

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'ketacare',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'groups'],
  // the ID token carries the scopes' claims too (userinfo has them as well)
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-only-cookie-key-not-a-secret'] },
  async findAccount(ctx, id) {
    if (id !== account.sub) return undefined;
    return { accountId: id, async claims() { return { ...account }; } };
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
const server = provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
