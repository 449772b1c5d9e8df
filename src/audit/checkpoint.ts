/**
 * Checkpoints: the signed head of a tenant's audit log, as a C2SP tlog-checkpoint in a C2SP
 * signed note (Ed25519, signature type 0x01), so tools other than Attest can check it.
 *
 *   <origin>\n<tree size>\n<base64 root hash>\ntime <RFC 3339 UTC>\n
 *   \n
 *   — <origin> <base64(4-byte key ID || Ed25519 signature of the text above the blank line)>\n
 *
 * The key name is the origin; key ID = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4].
 * Owns parsing, signing and verifying notes; knows nothing of the database.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Buffer;
  /** The "time" extension line, when present. */
  time: string | null;
  /** The signed text (everything above the blank line, with its final newline). */
  text: string;
  signatures: Array<{ keyName: string; keyId: Buffer; signature: Buffer }>;
}

export class CheckpointError extends Error {}

const EM_DASH = "\u2014";

/** The origin of a tenant's log: `<prefix>/audit/<tenant id>`. */
export function originOf(prefix: string, tenantId: string): string {
  return `${prefix}/audit/${tenantId}`;
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  return Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
}

export function keyIdOf(keyName: string, publicKey: KeyObject): Buffer {
  return createHash("sha256")
    .update(Buffer.from(`${keyName}\n`, "utf8"))
    .update(Buffer.from([1]))
    .update(rawPublicKey(publicKey))
    .digest()
    .subarray(0, 4);
}

/** The verifier key string of Go's golang.org/x/mod/sumdb/note: name+hex key ID+base64(0x01 || key). */
export function verifierKey(keyName: string, publicKey: KeyObject): string {
  const id = keyIdOf(keyName, publicKey).toString("hex");
  return `${keyName}+${id}+${Buffer.concat([Buffer.from([1]), rawPublicKey(publicKey)]).toString("base64")}`;
}

export function checkpointText(origin: string, treeSize: number, rootHash: Uint8Array, time: Date): string {
  if (!origin || /[\s+]/u.test(origin)) throw new CheckpointError("an origin has no spaces or plus signs");
  return `${origin}\n${treeSize}\n${Buffer.from(rootHash).toString("base64")}\ntime ${time.toISOString()}\n`;
}

/** Signs a checkpoint with the installation's Ed25519 key; returns the whole signed note. */
export function signCheckpoint(
  origin: string,
  treeSize: number,
  rootHash: Uint8Array,
  time: Date,
  privateKey: KeyObject,
): string {
  const text = checkpointText(origin, treeSize, rootHash, time);
  const publicKey = createPublicKey(privateKey);
  const signature = sign(null, Buffer.from(text, "utf8"), privateKey);
  const keyId = keyIdOf(origin, publicKey);
  return `${text}\n${EM_DASH} ${origin} ${Buffer.concat([keyId, signature]).toString("base64")}\n`;
}

/** Parses a signed checkpoint note; throws CheckpointError when it is malformed. */
export function parseCheckpoint(note: string): Checkpoint {
  if (!note.endsWith("\n")) throw new CheckpointError("a signed note ends with a newline");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\u0000-\u0009\u000b-\u001f]/u.test(note)) throw new CheckpointError("a signed note has no control characters");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new CheckpointError("a signed note has a blank line before its signatures");
  const text = note.slice(0, split + 1);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || lines.some((l) => l === ""))
    throw new CheckpointError("a checkpoint has at least three lines");
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw new CheckpointError(`tree size "${sizeLine}" is not a number`);
  const treeSize = Number(sizeLine);
  if (!Number.isSafeInteger(treeSize)) throw new CheckpointError("tree size is too large");
  const rootHash = Buffer.from(rootLine, "base64");
  if (rootHash.length !== 32 || rootHash.toString("base64") !== rootLine) {
    throw new CheckpointError("the root hash is not 32 bytes of base64");
  }
  const time = extensions.find((l) => l.startsWith("time "))?.slice(5) ?? null;
  const signatures = note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      const m = line.match(/^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u);
      if (!m) throw new CheckpointError(`malformed signature line "${line}"`);
      const bytes = Buffer.from(m[2], "base64");
      if (bytes.length < 5) throw new CheckpointError("a signature is too short");
      return { keyName: m[1], keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) };
    });
  return { origin, treeSize, rootHash, time, text, signatures };
}

/** Whether the checkpoint carries a valid signature of `publicKey` under its origin's key name. */
export function checkpointSignedBy(checkpoint: Checkpoint, publicKey: KeyObject): boolean {
  const keyId = keyIdOf(checkpoint.origin, publicKey);
  return checkpoint.signatures.some(
    (s) =>
      s.keyName === checkpoint.origin &&
      s.keyId.equals(keyId) &&
      s.signature.length === 64 &&
      verify(null, Buffer.from(checkpoint.text, "utf8"), publicKey, s.signature),
  );
}
