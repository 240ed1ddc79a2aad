// The tests' OAuth2/OIDC server: npm's oidc-provider on 127.0.0.1, set up as a Flyte
// deployment's identity provider is. Usage: node server.mjs OIDC_PROVIDER_DIR AUDIENCE [TTL_SECONDS]
// It prints `listening PORT` on stdout once it serves, and runs until killed.
//
// Clients: `flyte-deploy-ci` (secret `ci-secret`, client credentials) and `flytectl` (public:
// PKCE with S256 to any port of http://127.0.0.1/callback or http://localhost/callback, and
// the device flow), as FlyteAdmin's default public client is. Access tokens are JWTs for
// AUDIENCE (the resource every request gets unless it names another), scopes `all` and
// `offline`, signed with the provider's development keys (served at its jwks_uri). Logins
// go through oidc-provider's built-in development forms: any user name, any password.

import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, audience, ttlArg] = process.argv.slice(2);
if (!dir || !audience) {
  console.error('usage: node server.mjs OIDC_PROVIDER_DIR AUDIENCE [TTL_SECONDS]');
  process.exit(2);
}
const ttl = Number(ttlArg || 3600);
const { default: Provider, errors } = await import(pathToFileURL(path.join(dir, 'lib/index.js')).href);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'flyte-deploy-ci',
      client_secret: 'ci-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'flytectl',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    },
  ],
  scopes: ['openid', 'offline_access', 'all', 'offline'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf || audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== audience) throw new errors.InvalidTarget();
        return { scope: 'all offline', audience, accessTokenFormat: 'jwt', accessTokenTTL: ttl };
      },
    },
  },
  // A public client signing in gets a refresh token whenever it may use one.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  ttl: { AccessToken: ttl, ClientCredentials: ttl },
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server error:', err));
server.on('request', provider.callback());
console.log(`listening ${port}`);
