// An independent wallet for simtrust's interop tests: OpenID4VCI 1.0 (pre-authorized code, and
// the authorization code flow with PAR and PKCE: "authorize" then "redeemCode") and OpenID4VP 1.0 (request by reference, DCQL, direct_post) with Animo's oid4vc-ts, and
// SD-JWT VC presentations with the OpenID Foundation's @sd-jwt packages.
// stdin: {"action": "receive"|"present", ...}; stdout: one JSON result.
// The server listens on http://127.0.0.1:PORT while its public URL is https://localhost:PORT:
// the fetch callback maps one to the other (the wallet library insists on https URLs).
import crypto from 'node:crypto';
import {
  Oauth2Client, clientAuthenticationClientAttestationJwt, clientAuthenticationNone,
} from '@openid4vc/oauth2';
import { Openid4vciClient } from '@openid4vc/openid4vci';
import { Openid4vpClient } from '@openid4vc/openid4vp';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));

const fetchMapped = (url, init) => {
  const target = String(url).replace(input.publicBase, input.localBase);
  return fetch(target, init);
};

const b64u = (buffer) => Buffer.from(buffer).toString('base64url');
const hash = (data, alg) => new Uint8Array(
  crypto.createHash(alg.replace('-', '').toLowerCase()).update(data).digest());
const generateRandom = (n) => new Uint8Array(crypto.randomBytes(n));

// The holder key: Ed25519 (EdDSA) or, as HAIP wallets do, P-256 (ES256).
const es256 = input.alg === 'ES256';
const privateJwk = input.privateJwk ?? crypto.generateKeyPairSync(
  es256 ? 'ec' : 'ed25519', es256 ? { namedCurve: 'P-256' } : undefined,
).privateKey.export({ format: 'jwk' });
const privateKey = crypto.createPrivateKey({ key: privateJwk, format: 'jwk' });
const publicJwk = es256
  ? { kty: 'EC', crv: 'P-256', x: privateJwk.x, y: privateJwk.y }
  : { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x };
const holderAlg = es256 ? 'ES256' : 'EdDSA';
const holderSign = (data) => (es256
  ? crypto.sign('sha256', Buffer.from(data), { key: privateKey, dsaEncoding: 'ieee-p1363' })
  : crypto.sign(null, Buffer.from(data), privateKey));

function signCompact(header, payload) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(holderSign(input))}`;
}

const signJwt = async (signer, { header, payload }) => ({
  jwt: signCompact(header, payload), signerJwk: publicJwk,
});

// did:web resolution (W3C CCG did:web §3.2) and Multikey → JWK, for the verifier's request object.
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(text) {
  let n = 0n;
  for (const c of text) n = n * 58n + BigInt(B58.indexOf(c));
  const bytes = [];
  while (n > 0n) { bytes.unshift(Number(n % 256n)); n /= 256n; }
  return Buffer.from(bytes);
}
async function resolveKey(didUrl) {
  const [did, fragment] = didUrl.split('#');
  if (!did.startsWith('did:web:')) throw new Error(`cannot resolve ${did}`);
  const host = decodeURIComponent(did.slice('did:web:'.length).split(':')[0]);
  const response = await fetchMapped(`https://${host}/.well-known/did.json`);
  const document = await response.json();
  const method = document.verificationMethod.find((m) => m.id === didUrl || m.id === `#${fragment}`);
  const raw = base58(method.publicKeyMultibase.slice(1));
  if (raw[0] !== 0xed || raw[1] !== 0x01) throw new Error('not an Ed25519 Multikey');
  return { kty: 'OKP', crv: 'Ed25519', x: b64u(raw.subarray(2)) };
}
const verifyJwt = async (signer, { compact }) => {
  const jwk = signer.method === 'did' ? await resolveKey(signer.didUrl) : signer.publicJwk;
  const [h, p, s] = compact.split('.');
  if (JSON.parse(Buffer.from(h, 'base64url')).alg !== 'EdDSA') return { verified: false };
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const verified = crypto.verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  return verified ? { verified: true, signerJwk: jwk } : { verified: false };
};

// JWE encryption for direct_post.jwt (RFC 7516 compact, RFC 7518 §4.6 ECDH-ES direct key
// agreement with the Concat KDF of NIST SP 800-56A, AES-GCM), written on node:crypto.
function concatKdf(z, enc, apu, apv) {
  const bits = enc === 'A256GCM' ? 256 : 128;
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const field = (b) => Buffer.concat([u32(b.length), b]);
  const info = Buffer.concat([field(Buffer.from(enc)), field(apu), field(apv), u32(bits)]);
  const digest = crypto.createHash('sha256').update(Buffer.from([0, 0, 0, 1])).update(z).update(info).digest();
  return digest.subarray(0, bits / 8);
}
const encryptJwe = async (encryptor, plaintext) => {
  if (encryptor.alg !== 'ECDH-ES') throw new Error(`unsupported alg ${encryptor.alg}`);
  const recipient = crypto.createPublicKey({ key: encryptor.publicJwk, format: 'jwk' });
  const ephemeral = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const epk = ephemeral.publicKey.export({ format: 'jwk' });
  const z = crypto.diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const apu = encryptor.apu ? Buffer.from(encryptor.apu, 'base64url') : Buffer.alloc(0);
  const apv = encryptor.apv ? Buffer.from(encryptor.apv, 'base64url') : Buffer.alloc(0);
  const header = {
    alg: 'ECDH-ES', enc: encryptor.enc, kid: encryptor.publicJwk.kid,
    epk: { kty: 'EC', crv: 'P-256', x: epk.x, y: epk.y },
    ...(encryptor.apu ? { apu: encryptor.apu } : {}), ...(encryptor.apv ? { apv: encryptor.apv } : {}),
  };
  const protectedHeader = b64u(JSON.stringify(header));
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv(encryptor.enc === 'A256GCM' ? 'aes-256-gcm' : 'aes-128-gcm',
    concatKdf(z, encryptor.enc, apu, apv), iv);
  cipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(plaintext)), cipher.final()]);
  return {
    jwe: `${protectedHeader}..${b64u(iv)}.${b64u(ciphertext)}.${b64u(cipher.getAuthTag())}`,
    encryptionJwk: encryptor.publicJwk,
  };
};

// With a wallet attestation (made by the test as the wallet provider, for this wallet's key)
// the wallet authenticates with attest_jwt_client_auth; else it is a plain public client.
const callbacks = {
  fetch: fetchMapped, hash, generateRandom, signJwt, verifyJwt, encryptJwe,
  clientAuthentication: input.clientAttestation
    ? clientAuthenticationClientAttestationJwt({
      clientAttestationJwt: input.clientAttestation, callbacks: { signJwt, generateRandom },
    })
    : clientAuthenticationNone({ clientId: 'simtrust-test-wallet' }),
};

async function receive() {
  const client = new Openid4vciClient({ callbacks });
  const offer = await client.resolveCredentialOffer(input.offerUrl);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const configurationId = offer.credential_configuration_ids[0];
  const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer: offer, issuerMetadata, txCode: input.txCode,
  });
  const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
  const { jwt } = await client.createCredentialRequestJwtProof({
    issuerMetadata, credentialConfigurationId: configurationId, nonce,
    signer: { method: 'jwk', alg: holderAlg, publicJwk },
  });
  const response = await client.retrieveCredentials({
    issuerMetadata, accessToken: accessTokenResponse.access_token,
    credentialConfigurationId: configurationId, proofs: { jwt: [jwt] },
  });
  if (response.credentialResponse.transaction_id) {
    return {
      transactionId: response.credentialResponse.transaction_id,
      interval: response.credentialResponse.interval,
      accessToken: accessTokenResponse.access_token,
      issuer: offer.credential_issuer,
      privateJwk,
    };
  }
  return {
    credential: response.credentialResponse.credentials[0].credential,
    configurationId,
    issuerMetadata: issuerMetadata.credentialIssuer,
    authorizationServer: issuerMetadata.authorizationServers[0],
    proofHeader: JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')),
    privateJwk,
  };
}

// Authorization code flow, first half: resolve the offer, push the authorization request
// (the library uses PAR because the metadata asks for it) and hand back the URL the user's
// browser opens, with the PKCE verifier the wallet keeps.
async function authorize() {
  const client = new Openid4vciClient({ callbacks });
  const offer = await client.resolveCredentialOffer(input.offerUrl);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const configurationId = offer.credential_configuration_ids[0];
  const scope = issuerMetadata.credentialIssuer.credential_configurations_supported[configurationId].scope;
  const dpop = input.dpop ? { signer: { method: 'jwk', alg: holderAlg, publicJwk } } : undefined;
  const started = await client.initiateAuthorization({
    credentialOffer: offer, issuerMetadata, clientId: input.clientId,
    redirectUri: input.redirectUri, scope, dpop,
  });
  return {
    authorizationFlow: started.authorizationFlow,
    authorizationRequestUrl: started.authorizationRequestUrl,
    pkceCodeVerifier: started.pkce?.codeVerifier,
    codeChallengeMethod: started.pkce?.codeChallengeMethod,
    authorizationServer: started.authorizationServer,
    scope,
    privateJwk,
  };
}

// Second half: check the redirect (RFC 9207 iss), redeem the code with the verifier, prove the
// key and receive the credential.
async function redeemCode() {
  const client = new Openid4vciClient({ callbacks });
  const offer = await client.resolveCredentialOffer(input.offerUrl);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const configurationId = offer.credential_configuration_ids[0];
  const authorizationServerMetadata = issuerMetadata.authorizationServers[0];
  const redirect = client.parseAndVerifyAuthorizationResponseRedirectUrl({
    url: input.redirectUrl, authorizationServerMetadata,
  });
  const dpop = input.dpop ? { signer: { method: 'jwk', alg: holderAlg, publicJwk } } : undefined;
  const token = await client.retrieveAuthorizationCodeAccessTokenFromOffer({
    credentialOffer: offer, issuerMetadata, authorizationCode: redirect.code,
    pkceCodeVerifier: input.pkceCodeVerifier, redirectUri: input.redirectUri, dpop,
  });
  const { accessTokenResponse } = token;
  const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
  const { jwt } = await client.createCredentialRequestJwtProof({
    issuerMetadata, credentialConfigurationId: configurationId, nonce,
    signer: { method: 'jwk', alg: holderAlg, publicJwk },
  });
  const response = await client.retrieveCredentials({
    issuerMetadata, accessToken: accessTokenResponse.access_token,
    credentialConfigurationId: configurationId, proofs: { jwt: [jwt] }, dpop: token.dpop,
  });
  return {
    code: redirect.code,
    tokenType: accessTokenResponse.token_type,
    credential: response.credentialResponse.credentials[0].credential,
    privateJwk,
  };
}

// DPoP (RFC 9449) and refresh tokens (RFC 6749 §6): the pre-authorized code redeemed with a
// DPoP proof (the library retries with the server's nonce), the access token refreshed with a
// proof of the same key, and the credential requested with the refreshed DPoP-bound token (the
// first proof carries no nonce, so the library follows the 401 use_dpop_nonce challenge).
async function receiveDpop() {
  const client = new Openid4vciClient({ callbacks });
  const offer = await client.resolveCredentialOffer(input.offerUrl);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const configurationId = offer.credential_configuration_ids[0];
  const signer = { method: 'jwk', alg: holderAlg, publicJwk };
  const first = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer: offer, issuerMetadata, txCode: input.txCode, dpop: { signer },
  });
  const oauth2 = new Oauth2Client({ callbacks });
  const refreshed = await oauth2.retrieveRefreshTokenAccessToken({
    authorizationServerMetadata: issuerMetadata.authorizationServers[0],
    refreshToken: first.accessTokenResponse.refresh_token, dpop: first.dpop,
  });
  const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
  const { jwt } = await client.createCredentialRequestJwtProof({
    issuerMetadata, credentialConfigurationId: configurationId, nonce, signer,
  });
  const response = await client.retrieveCredentials({
    issuerMetadata, accessToken: refreshed.accessTokenResponse.access_token,
    credentialConfigurationId: configurationId, proofs: { jwt: [jwt] }, dpop: { signer },
  });
  return {
    credential: response.credentialResponse.credentials[0].credential,
    first: first.accessTokenResponse,
    refreshed: refreshed.accessTokenResponse,
    tokenNonce: first.dpop?.nonce ?? null,
    credentialNonce: response.dpop?.nonce ?? null,
    publicJwk,
    privateJwk,
  };
}

async function deferred() {
  const client = new Openid4vciClient({ callbacks });
  const issuerMetadata = await client.resolveIssuerMetadata(input.issuer);
  const response = await client.retrieveDeferredCredentials({
    issuerMetadata, accessToken: input.accessToken, transactionId: input.transactionId,
  });
  const body = response.deferredCredentialResponse;
  return { credential: body.credentials?.[0]?.credential, transactionId: body.transaction_id ?? null };
}

async function present() {
  const client = new Openid4vpClient({ callbacks });
  const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: input.requestUrl });
  const resolved = await client.resolveOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: parsed.params,
  });
  const request = resolved.authorizationRequestPayload;
  const query = resolved.dcql.query.credentials[0];
  const sdjwt = new SDJwtVcInstance({
    hasher: (data, alg) => hash(typeof data === 'string' ? Buffer.from(data) : data, alg),
    kbSigner: (data) => b64u(holderSign(data)),
    kbSignAlg: holderAlg,
    saltGenerator: () => b64u(crypto.randomBytes(16)),
  });
  const frame = Object.fromEntries(query.claims.map((c) => [c.path[0], true]));
  const presentation = await sdjwt.present(input.credential, frame, {
    kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: request.client_id, nonce: request.nonce } },
  });
  const jarm = request.response_mode === 'direct_post.jwt' ? {
    encryption: {},
    serverMetadata: {
      authorization_encryption_alg_values_supported: ['ECDH-ES'],
      authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'],
    },
  } : undefined;
  const created = await client.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: { [query.id]: [presentation] } },
    jarm,
  });
  const submitted = await client.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: created.authorizationResponsePayload, jarm: created.jarm,
  });
  return {
    status: submitted.response.status,
    body: await submitted.response.json(),
    clientId: request.client_id,
    responseMode: request.response_mode,
    jarSigner: resolved.jar?.signer?.method,
    encryptedResponse: created.jarm?.responseJwt ?? null,
    version: resolved.version,
  };
}

try {
  const actions = { receive, receiveDpop, deferred, present, authorize, redeemCode };
  const result = await actions[input.action]();
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error), detail: error?.errorResponse ?? error?.cause?.message ?? null }));
  process.exitCode = 1;
}
