/**
 * The installation's Ed25519 signing keys: created on first start, stored in app_private,
 * rotated on request (old keys stay published so that old packs still verify).
 * Owns key generation and fingerprints; callers pass a pool that acts as the owner role.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import type pg from "pg";

export interface SigningKey {
  fingerprint: string;
  publicKeyPem: string;
  privateKey: KeyObject;
}

/** The fingerprint of an Ed25519 public key: SHA-256 of its raw 32 bytes, hex, in groups of 4. */
export function formatFingerprint(hex: string): string {
  return hex.match(/.{1,4}/g)?.join(":") ?? hex;
}

/** SHA-256 (hex) of the raw 32-byte Ed25519 public key. */
export function fingerprintOf(publicKey: KeyObject): string {
  const raw = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
  return createHash("sha256").update(raw).digest("hex");
}

async function createKey(client: pg.ClientBase): Promise<SigningKey> {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const fingerprint = fingerprintOf(publicKey);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  await client.query(
    "insert into app_private.signing_keys (fingerprint, public_key_pem, private_key_pem) values ($1, $2, $3)",
    [fingerprint, publicKeyPem, privateKey.export({ type: "pkcs8", format: "pem" }).toString()],
  );
  return { fingerprint, publicKeyPem, privateKey };
}

/** The active signing key; creates the installation's first key when there is none. */
export async function activeSigningKey(owner: pg.Pool): Promise<SigningKey> {
  const client = await owner.connect();
  try {
    await client.query("begin");
    await client.query("lock table app_private.signing_keys in share row exclusive mode");
    const { rows } = await client.query<{ fingerprint: string; public_key_pem: string; private_key_pem: string }>(
      "select fingerprint, public_key_pem, private_key_pem from app_private.signing_keys where retired_at is null",
    );
    const key = rows[0]
      ? {
          fingerprint: rows[0].fingerprint,
          publicKeyPem: rows[0].public_key_pem,
          privateKey: createPrivateKey(rows[0].private_key_pem),
        }
      : await createKey(client);
    await client.query("commit");
    return key;
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** The active key as the sealer role reads it (it cannot create one: the server does at start). */
export async function readActiveSigningKey(pool: pg.Pool): Promise<SigningKey> {
  const { rows } = await pool.query<{ fingerprint: string; public_key_pem: string; private_key_pem: string }>(
    "select fingerprint, public_key_pem, private_key_pem from app_private.sealer_signing_key()",
  );
  if (!rows[0]) throw new Error("there is no active signing key yet (the server creates one when it starts)");
  return {
    fingerprint: rows[0].fingerprint,
    publicKeyPem: rows[0].public_key_pem,
    privateKey: createPrivateKey(rows[0].private_key_pem),
  };
}

/** Retires the active key and creates a new one; returns the new key. */
export async function rotateSigningKey(owner: pg.Pool): Promise<SigningKey> {
  const client = await owner.connect();
  try {
    await client.query("begin");
    await client.query("lock table app_private.signing_keys in share row exclusive mode");
    await client.query("update app_private.signing_keys set retired_at = now() where retired_at is null");
    const key = await createKey(client);
    await client.query("commit");
    return key;
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
