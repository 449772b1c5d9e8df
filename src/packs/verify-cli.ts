/**
 * npm run verify -- <pack.zip> [--key <fingerprint>]...
 *
 * Verifies an evidence pack offline and prints one line: VALID: … (exit 0) or INVALID: <check>: …
 * (exit 1). Usage errors (no such file, bad arguments) go to stderr with exit 2. Trusted key
 * fingerprints come from --key and from ATTEST_TRUSTED_KEYS (comma-separated); without any, the
 * signing key's fingerprint is printed for the reader to compare.
 */
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { formatFingerprint } from "./format.ts";
import { normalizeFingerprint, verifyPack } from "./verify.ts";

const USAGE = "usage: npm run verify -- <pack.zip> [--key <fingerprint>]...";

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed: ReturnType<
    typeof parseArgs<{ options: { key: { type: "string"; multiple: true } }; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ options: { key: { type: "string", multiple: true } }, allowPositionals: true });
  } catch (error) {
    usageError((error as Error).message);
  }
  const [zipPath, ...extra] = parsed.positionals;
  if (zipPath === undefined) usageError("which pack? give the path of the ZIP");
  if (extra.length > 0) usageError(`one pack at a time (got ${parsed.positionals.length})`);

  const given = [
    ...(parsed.values.key ?? []),
    ...(process.env.ATTEST_TRUSTED_KEYS ?? "").split(",").filter((k) => k.trim() !== ""),
  ];
  const trusted: string[] = [];
  for (const key of given) {
    const fingerprint = normalizeFingerprint(key);
    if (fingerprint === null) usageError(`not a key fingerprint (64 hex digits): ${key}`);
    trusted.push(fingerprint);
  }

  const info = await stat(zipPath).catch(() => null);
  if (!info?.isFile()) usageError(`no such file: ${zipPath}`);

  const verdict = await verifyPack(zipPath, trusted.length > 0 ? { trustedFingerprints: trusted } : {});
  if (verdict.ok) {
    const s = verdict.summary;
    const unchecked = s.keyTrusted ? "" : " (key not checked against a trusted fingerprint)";
    process.stdout.write(
      `VALID: ${s.incident.title} — ${plural(s.entries, "audit entry", "audit entries")}, ${plural(s.files, "file", "files")}, signed by ${formatFingerprint(s.fingerprint)}${unchecked}\n`,
    );
    process.exitCode = 0;
  } else {
    process.stdout.write(`INVALID: ${verdict.check}: ${verdict.message}\n`);
    process.exitCode = 1;
  }
}

await main();
