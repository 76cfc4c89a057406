"""An EAP-AKA / EAP-AKA' peer (the USIM and the supplicant) written for the tests,
independently of simtrust's AuC and EAP code: MILENAGE on cryptography's AES (TS 35.206
§4.1), the TS 33.402 Annex A.2 KDF and RFC 5448 PRF' on hmac, the RFC 4187 Appendix A
PRF on its own SHA-1 compression, the RADIUS side on pyrad (RFC 3579)."""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pyrad.packet import AccessAccept, AccessChallenge, AccessReject, AuthPacket

from .peers import pyrad_dictionary

AKA, AKA_PRIME = 23, 50


def _aes(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot(x: bytes, octets: int) -> bytes:
    return x[octets:] + x[:octets]


class Usim:
    """MILENAGE f1..f5* of TS 35.206 with the usual r/c constants, plus SQN checking."""

    def __init__(self, k: bytes, opc: bytes, sqn_ms: int = 0) -> None:
        self.k, self.opc, self.sqn_ms = k, opc, sqn_ms

    def _out(self, temp: bytes, rot: int, const: int, in1: bytes | None = None) -> bytes:
        c = bytes(15) + bytes((const,))
        base = _xor(in1, self.opc) if in1 is not None else _xor(temp, self.opc)
        value = _xor(_rot(base, rot), c)
        if in1 is not None:
            value = _xor(value, temp)
        return _xor(_aes(self.k, value), self.opc)

    def functions(self, rand: bytes, sqn: bytes, amf: bytes) -> dict[str, bytes]:
        temp = _aes(self.k, _xor(rand, self.opc))
        out1 = self._out(temp, 8, 0, in1=sqn + amf + sqn + amf)
        out2 = self._out(temp, 0, 1)
        out3 = self._out(temp, 4, 2)
        out4 = self._out(temp, 8, 4)
        out5 = self._out(temp, 12, 8)
        return {"f1": out1[:8], "f1star": out1[8:], "f2": out2[8:], "f5": out2[:6],
                "f3": out3, "f4": out4, "f5star": out5[:6]}

    def authenticate(self, rand: bytes, autn: bytes) -> tuple[bytes, bytes, bytes] | bytes:
        """(RES, CK, IK), or AUTS when the SQN is not fresh (TS 33.102 §6.3.3, §6.3.5)."""
        f = self.functions(rand, bytes(6), bytes(2))
        sqn = _xor(autn[:6], f["f5"])
        amf, mac = autn[6:8], autn[8:16]
        f = self.functions(rand, sqn, amf)
        if not hmac.compare_digest(mac, f["f1"]):
            raise AssertionError("network MAC-A does not verify")
        if int.from_bytes(sqn, "big") <= self.sqn_ms:
            sqn_ms = self.sqn_ms.to_bytes(6, "big")
            resync = self.functions(rand, sqn_ms, bytes(2))
            return _xor(sqn_ms, resync["f5star"]) + resync["f1star"]
        self.sqn_ms = int.from_bytes(sqn, "big")
        return f["f2"], f["f3"], f["f4"]


def ck_ik_prime(ck: bytes, ik: bytes, network: bytes, sqn_xor_ak: bytes) -> tuple[bytes, bytes]:
    s = b"\x20" + network + len(network).to_bytes(2, "big") + sqn_xor_ak + b"\x00\x06"
    out = hmac.new(ck + ik, s, hashlib.sha256).digest()
    return out[:16], out[16:]


def prf_prime(key: bytes, seed: bytes, n: int) -> bytes:
    t, out, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(key, t + seed + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def _sha1_block(data: bytes) -> bytes:
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    w = list(struct.unpack(">16L", data))
    for i in range(16, 80):
        x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
        w.append(((x << 1) | (x >> 31)) & 0xFFFFFFFF)
    a, b, c, d, e = h
    for i in range(80):
        if i < 20:
            f, k = d ^ (b & (c ^ d)), 0x5A827999
        elif i < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif i < 60:
            f, k = (b & c) | (d & (b | c)), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        rotated = ((a << 5) | (a >> 27)) & 0xFFFFFFFF
        a, b, c, d, e = (rotated + f + e + k + w[i]) & 0xFFFFFFFF, a, \
            ((b << 30) | (b >> 2)) & 0xFFFFFFFF, c, d
    return b"".join(((x + y) & 0xFFFFFFFF).to_bytes(4, "big") for x, y in
                    zip(h, (a, b, c, d, e), strict=True))


def fips_prf(xkey: bytes, n: int) -> bytes:
    x, out = int.from_bytes(xkey, "big"), b""
    while len(out) < n:
        w = _sha1_block(x.to_bytes(20, "big") + bytes(44))
        out += w
        x = (x + int.from_bytes(w, "big") + 1) & ((1 << 160) - 1)
    return out[:n]


def attrs(data: bytes) -> dict[int, bytes]:
    found, i = {}, 0
    while i < len(data):
        kind, units = data[i], data[i + 1]
        found[kind] = data[i + 2: i + 4 * units]
        i += 4 * units
    return found


def attr(kind: int, value: bytes) -> bytes:
    value += bytes(-(len(value) + 2) % 4)
    return bytes((kind, (len(value) + 2) // 4)) + value


def aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def mppe_decrypt(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    salt, body, out, last = value[:2], value[2:], b"", authenticator + value[:2]
    del salt
    for i in range(0, len(body), 16):
        block = body[i:i + 16]
        out += _xor(block, hashlib.md5(secret + last).digest())
        last = block
    return out[1:1 + out[0]]


@dataclass
class Result:
    code: int
    reply: AuthPacket
    msk: bytes = b""
    method: int = 0
    rounds: int = 0
    pseudonym: bytes = b""
    reauth_id: bytes = b""
    seen: list[int] = field(default_factory=list)


class Peer:
    """One subscriber's supplicant talking to a RADIUS server through a gateway."""

    def __init__(self, usim: Usim, imsi: str, secret: bytes, port: int,
                 realm: str = "wlan.mnc001.mcc001.3gppnetwork.org") -> None:
        self.usim, self.imsi, self.secret, self.port, self.realm = usim, imsi, secret, port, realm
        self.pseudonym = b""
        self.reauth: dict[str, object] = {}
        self.dictionary = pyrad_dictionary()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(10)
        self.identifier = 0

    def close(self) -> None:
        self.sock.close()

    def _radius(self, eap: bytes, state: bytes | None, extra: dict[str, str]) -> AuthPacket:
        self.identifier = (self.identifier + 1) % 256
        request = AuthPacket(id=self.identifier, secret=self.secret, dict=self.dictionary)
        request["User-Name"] = self.imsi
        for name, value in extra.items():
            request[name] = value
        request["EAP-Message"] = [eap[i:i + 253] for i in range(0, len(eap), 253)]
        if state is not None:
            request["State"] = state
        request.add_message_authenticator()
        wire = request.RequestPacket()
        self.sock.sendto(wire, ("127.0.0.1", self.port))
        data, _ = self.sock.recvfrom(4096)
        reply = request.CreateReply(packet=data)
        assert request.VerifyReply(reply, data), "bad Response Authenticator"
        assert reply.verify_message_authenticator(original_authenticator=request.authenticator)
        reply.request_authenticator = request.authenticator
        return reply

    def authenticate(self, identity: bytes, *, extra: dict[str, str] | None = None,
                     tamper_res: bool = False) -> Result:
        """Run EAP from EAP-Response/Identity to Success or Failure."""
        extra = extra or {}
        eap = bytes((2, 0)) + (5 + len(identity)).to_bytes(2, "big") + b"\x01" + identity
        state: bytes | None = None
        key_identity = identity
        keys: dict[str, bytes] = {}
        result = Result(0, AuthPacket(dict=self.dictionary))
        for _round in range(8):
            reply = self._radius(eap, state, extra)
            result.rounds += 1
            message = b"".join(reply["EAP-Message"]) if "EAP-Message" in reply else b""
            if reply.code in (AccessAccept, AccessReject):
                result.code, result.reply = reply.code, reply
                if reply.code == AccessAccept:
                    assert message[0] == 3
                    recv = mppe_decrypt(reply["MS-MPPE-Recv-Key"][0], self.secret,
                                        reply.request_authenticator)
                    send = mppe_decrypt(reply["MS-MPPE-Send-Key"][0], self.secret,
                                        reply.request_authenticator)
                    result.msk = recv + send
                    assert result.msk == keys["msk"][:64], "MSK differs from the peer's"
                else:
                    assert message[0] == 4
                return result
            assert reply.code == AccessChallenge
            state = reply["State"][0]
            ident, method, subtype = message[1], message[4], message[5]
            result.method = method
            result.seen.append(subtype)
            at = attrs(message[8:])
            if subtype == 5:  # AKA-Identity: give the permanent identity
                key_identity = (("0" if method == AKA else "6") + self.imsi + "@"
                                + self.realm).encode()
                body = attr(14, len(key_identity).to_bytes(2, "big") + key_identity)
                eap = self._eap(ident, method, 5, body)
            elif subtype == 1:  # Challenge
                eap = self._challenge(ident, method, message, at, key_identity, keys,
                                      result, tamper_res)
            elif subtype == 13:  # Re-authentication
                eap = self._reauth(ident, method, message, at, key_identity, keys)
            else:
                raise AssertionError(f"unexpected subtype {subtype}")
        raise AssertionError("no final answer")

    @staticmethod
    def _eap(ident: int, method: int, subtype: int, body: bytes) -> bytes:
        return bytes((2, ident)) + (8 + len(body)).to_bytes(2, "big") + \
            bytes((method, subtype, 0, 0)) + body

    @staticmethod
    def _mac(method: int, k_aut: bytes, packet: bytes, extra: bytes = b"") -> bytes:
        digest = hashlib.sha256 if method == AKA_PRIME else hashlib.sha1
        return hmac.new(k_aut, packet + extra, digest).digest()[:16]

    def _signed(self, ident: int, method: int, subtype: int, body: bytes, k_aut: bytes,
                extra: bytes = b"") -> bytes:
        packet = self._eap(ident, method, subtype, body + attr(11, bytes(18)))
        return packet[:-16] + self._mac(method, k_aut, packet, extra)

    def _check_mac(self, method: int, k_aut: bytes, message: bytes) -> None:
        at = attrs(message[8:])
        zeroed = message.replace(at[11][2:], bytes(16))
        assert hmac.compare_digest(at[11][2:], self._mac(method, k_aut, zeroed)), "server MAC"

    def _challenge(self, ident: int, method: int, message: bytes, at: dict[int, bytes],
                   identity: bytes, keys: dict[str, bytes], result: Result,
                   tamper_res: bool) -> bytes:
        rand, autn = at[1][2:], at[2][2:]
        answer = self.usim.authenticate(rand, autn)
        if isinstance(answer, bytes):  # AUTS: ask for re-synchronisation
            return self._eap(ident, method, 4, attr(4, answer))
        res, ck, ik = answer
        if method == AKA_PRIME:
            name = at[23][2:2 + int.from_bytes(at[23][:2], "big")]
            assert at[24] == b"\x00\x01"
            ckp, ikp = ck_ik_prime(ck, ik, name, autn[:6])
            mk = prf_prime(ikp + ckp, b"EAP-AKA'" + identity, 208)
            keys.update(k_encr=mk[:16], k_aut=mk[16:48], k_re=mk[48:80], msk=mk[80:144])
        else:
            assert at[136][:1] == b"\x80"  # AT_BIDDING: the server supports AKA'
            mk = hashlib.sha1(identity + ik + ck).digest()
            stream = fips_prf(mk, 160)
            keys.update(k_encr=stream[:16], k_aut=stream[16:32], msk=stream[32:96], mk=mk)
        self._check_mac(method, keys["k_aut"], message)
        inner = attrs(aes_cbc(keys["k_encr"], at[129][2:], at[130][2:], decrypt=True))
        pseudonym = inner[132][2:2 + int.from_bytes(inner[132][:2], "big")]
        reauth_id = inner[133][2:2 + int.from_bytes(inner[133][:2], "big")]
        result.pseudonym, result.reauth_id = pseudonym, reauth_id
        self.reauth = {"id": reauth_id, "keys": dict(keys), "method": method}
        if tamper_res:
            res = bytes(len(res))
        body = attr(3, (8 * len(res)).to_bytes(2, "big") + res)
        return self._signed(ident, method, 1, body, keys["k_aut"])

    def _reauth(self, ident: int, method: int, message: bytes, at: dict[int, bytes],
                identity: bytes, keys: dict[str, bytes]) -> bytes:
        old = self.reauth["keys"]
        assert isinstance(old, dict)
        self._check_mac(method, old["k_aut"], message)
        inner = attrs(aes_cbc(old["k_encr"], at[129][2:], at[130][2:], decrypt=True))
        counter, nonce_s = inner[19][:2], inner[21][2:]
        next_id = inner[133][2:2 + int.from_bytes(inner[133][:2], "big")]
        if method == AKA_PRIME:
            mk = prf_prime(old["k_re"], b"EAP-AKA' re-auth" + identity + counter + nonce_s, 128)
            keys["msk"] = mk[:64]
        else:
            xkey = hashlib.sha1(identity + counter + nonce_s + old["mk"]).digest()
            keys["msk"] = fips_prf(xkey, 128)[:64]
        self.reauth = {"id": next_id, "keys": old, "method": method}
        iv = bytes(range(16))
        plain = attr(19, counter) + attr(6, bytes(10))
        body = attr(129, bytes(2) + iv) + attr(130, bytes(2) + aes_cbc(old["k_encr"], iv, plain))
        return self._signed(ident, method, 13, body, old["k_aut"], nonce_s)
