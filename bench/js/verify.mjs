// Digital Bazaar's VC stack verifying credentials simtrust signed, as the peer in `bench vc`.
// Input (JSON on stdin): {"seconds": s, "contexts": {url: document}, "credentials": {label: vc}}.
// Output (JSON on stdout): {"verify_per_s": {label: rate}, "verified": {label: bool}, "node": version}.
import {readFileSync} from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as rdfc} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
const jcs = createVerifyCryptosuite();
import * as didKey from '@digitalbazaar/did-method-key';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';

const input = JSON.parse(readFileSync(0, 'utf8'));
const didKeyDriver = didKey.driver();
didKeyDriver.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});

// No network: only the bundled contexts and did:key documents resolve.
const documentLoader = async url => {
  if(input.contexts[url]) {
    return {contextUrl: null, documentUrl: url, document: input.contexts[url]};
  }
  if(url.startsWith('did:key:')) {
    const document = await didKeyDriver.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  throw new Error(`document loader refuses ${url}`);
};

const suiteFor = cred => {
  const name = cred.proof.cryptosuite;
  return new DataIntegrityProof({cryptosuite: name === 'eddsa-jcs-2022' ? jcs : rdfc});
};

const verifyOnce = async cred => {
  const result = await vc.verifyCredential({
    credential: cred, suite: suiteFor(cred), documentLoader,
    checkStatus: async () => ({verified: true}),
  });
  return result.verified;
};

const out = {verify_per_s: {}, verified: {}, node: process.version};
for(const [label, cred] of Object.entries(input.credentials)) {
  out.verified[label] = await verifyOnce(cred);
  if(!out.verified[label]) {
    continue;
  }
  let count = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(input.seconds * 1e9));
  while(process.hrtime.bigint() - start < budget) {
    await verifyOnce(cred);
    count++;
  }
  out.verify_per_s[label] = count / (Number(process.hrtime.bigint() - start) / 1e9);
}
process.stdout.write(JSON.stringify(out));
