// An independent holder: Digital Bazaar's VC stack issues a credential and signs a
// presentation without a holder (as the W3C VC 2.0 test suite does), eddsa-rdfc-2022.
// Input (JSON on stdin): {"contexts": {url: document}, "challenge": s, "credential": vc}.
// Output (JSON on stdout): the signed presentation.
import {readFileSync} from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as rdfc} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as didKey from '@digitalbazaar/did-method-key';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';

const input = JSON.parse(readFileSync(0, 'utf8'));
const didKeyDriver = didKey.driver();
didKeyDriver.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});
const documentLoader = async url => {
  if(input.contexts[url]) {
    return {contextUrl: null, documentUrl: url, document: input.contexts[url]};
  }
  if(url.startsWith('did:key:')) {
    return {contextUrl: null, documentUrl: url, document: await didKeyDriver.get({url})};
  }
  throw new Error(`document loader refuses ${url}`);
};

const keyPair = await Ed25519Multikey.generate();
const did = `did:key:${keyPair.publicKeyMultibase}`;
keyPair.controller = did;
keyPair.id = `${did}#${keyPair.publicKeyMultibase}`;
const suite = new DataIntegrityProof({signer: keyPair.signer(), cryptosuite: rdfc});
const credential = {...input.credential, issuer: did};
const signed = await vc.issue({credential, suite, documentLoader});
const presentation = vc.createPresentation({verifiableCredential: [signed]});
const vp = await vc.signPresentation({
  presentation, suite, challenge: input.challenge, documentLoader,
});
process.stdout.write(JSON.stringify(vp));
