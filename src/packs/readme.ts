/**
 * README.txt of an evidence pack (format version 2): what is inside and how to verify it, with
 * Attest or with other tools, and what verifying proves and cannot prove (src/packs/format.ts
 * holds the reference text). Plain ASCII-friendly text; nothing in it is checked by the verifier
 * beyond its SHA-256.
 */
import type { Checkpoint } from "../audit/checkpoint.ts";
import { formatFingerprint, type Manifest } from "./format.ts";

export function readmeText(p: {
  tenant: Manifest["tenant"];
  incident: Manifest["incident"];
  generatedAt: string;
  toolVersion: string;
  fingerprint: string;
  checkpoint: Checkpoint;
}): string {
  const cp = p.checkpoint;
  return `Attest evidence pack (format attest-evidence-pack/2)
====================================================

Incident:    ${p.incident.title} (${p.incident.id})
Workspace:   ${p.tenant.name} (${p.tenant.slug})
Generated:   ${p.generatedAt} by Attest ${p.toolVersion}
Signed by:   Ed25519 key ${formatFingerprint(p.fingerprint)}
Checkpoint:  ${cp.origin}, ${cp.treeSize} entries, root ${cp.rootHash.toString("hex")}${cp.time ? `, ${cp.time}` : ""}

This ZIP is a self-contained, tamper-evident record of one incident. Before you trust it, check
that the fingerprint above is one the Attest installation that made it publishes, at
https://<installation>/.well-known/attest-signing-keys.json (retired keys stay listed), or one its
administrators give you by another channel: anyone can sign a pack with a key of their own.

What is inside
--------------
  README.txt            this file
  incident.json         the incident, its NIS2 milestones and the index of its evidence files
  evidence/             every evidence file, byte for byte, named <first 8 characters of its id>-<filename>
  audit/entries.jsonl   the incident's audit entries, oldest first, one per line:
                        {"seq": <position in the workspace's log>, "leaf": "<the entry's leaf>", "proof": ["<hex>", ...]}
  audit/entries.csv     the same entries as a spreadsheet (UTF-8; a cell that starts with = + - @ or a
                        tab gets a leading ' so that spreadsheets do not run it as a formula)
  audit/checkpoint.txt  the signed checkpoint of the workspace's audit log: its size and root hash
  report.pdf            the report for people
  manifest.json         every other file's path, size and SHA-256, the entries' positions, the
                        checkpoint, the key
  manifest.sig          the Ed25519 signature (base64) of the exact bytes of manifest.json

The workspace's audit log is a Merkle tree (RFC 9162, as in Certificate Transparency): every audit
entry of the workspace is a leaf, at its position (seq). A leaf is UTF-8 text:

  attest-audit-entry/2
  seq <position>
  incident-prev <position> <leaf hash>      (or "incident-prev none" for the incident's first entry)

  <the entry as one JSON object: who, when, where from, what was done, what changed>

The incident-prev line names the previous entry of the same incident, so the entries of an
incident form a chain inside the log.

Verify with Attest
------------------
In a checkout of Attest (npm install done), with the fingerprint the installation publishes:

  npm run verify -- pack.zip --key <fingerprint>

It prints one line, VALID: ... or INVALID: <check>: <what is wrong>, and exits 0 or 1. It needs
no network and no database. The fingerprint may also be given as ATTEST_TRUSTED_KEYS=<fp>,<fp>.
It makes every check below.

Verify by hand or with other tools, in the directory where the ZIP was extracted
--------------------------------------------------------------------------------
(OpenSSL 3, jq, sha256sum. Folders that unzip or zip tools add are not files of the pack.)

1. The manifest's signature, and the key that made it:

     jq -r .signing_key.public_key_pem manifest.json > key.pem
     base64 -d manifest.sig > manifest.sig.bin
     openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile manifest.sig.bin
     openssl pkey -pubin -in key.pem -outform DER | tail -c 32 | sha256sum

   The first command must print "Signature Verified Successfully". The last prints the key's
   fingerprint: it must equal signing_key.fingerprint in manifest.json and the fingerprint the
   installation publishes (without the colons).

2. Every file: for each entry of "files" in manifest.json, the file exists, has that size in bytes
   and that SHA-256 (sha256sum <path>). The ZIP holds no other file than these, manifest.json and
   manifest.sig.

3. The checkpoint: audit/checkpoint.txt is a C2SP tlog-checkpoint in a C2SP signed note
   (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note): the origin line, the tree size,
   the base64 root hash, a "time" line, a blank line, then the signature line
   "<em dash> <origin> <base64 of 4-byte key ID and 64-byte Ed25519 signature>". The signature covers
   the lines above the blank line, each with its newline, and is made by the same key:

     sed -n '1,/^$/p' audit/checkpoint.txt | head -n -1 > checkpoint.body
     tail -n 1 audit/checkpoint.txt | cut -d' ' -f3 | base64 -d | tail -c 64 > checkpoint.sig
     openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in checkpoint.body -sigfile checkpoint.sig

   Go's golang.org/x/mod/sumdb/note verifies it as well. The origin must end with
   /audit/<workspace id>, and origin, size and root (hex) must be audit.checkpoint of manifest.json.

4. Every entry: for each line of audit/entries.jsonl,
   - the leaf's second line is "seq <the line's seq>", and seq is at most the checkpoint's size;
   - the leaf hash is SHA-256 of a zero byte followed by the leaf's bytes:
       head -n 1 audit/entries.jsonl | { printf '\\0'; jq -j .leaf; } | sha256sum
   - "proof" is the RFC 9162 inclusion proof (section 2.1.3.2) of leaf number seq-1 (counting from
     0) in the tree of the checkpoint's size, leaf side first: combining the leaf hash with the proof's
     hashes (node = SHA-256 of byte 0x01, left child, right child) must give the checkpoint's root;
   - the JSON body's tenant_id and incident_id are this workspace's and this incident's;
   - the first entry says "incident-prev none"; every next entry says "incident-prev <seq> <leaf hash>"
     of the entry on the line before it;
   - the seqs are audit.entries of manifest.json, in that order.
   audit/entries.csv has one row per entry with what its leaf's body says and its leaf hash.

What a VALID pack proves
------------------------
Nothing in it was changed after it was signed. Every entry is, byte for byte, the leaf at its
position in the log the signed checkpoint commits to, so no entry was altered, made up or moved
without breaking a proof, even by whoever holds the signing key. Because each entry's leaf names
the incident's previous entry, no entry of the incident was removed, added or reordered anywhere
between its first entry and the last entry in this pack.

What it cannot prove
--------------------
- That the incident had no entries after the pack's last entry: leaving out the last entries leaves
  no trace in the pack. A later pack, or the installation, shows them.
- That this log is the installation's only one: whoever holds the key could sign an entirely
  different tree. Compare the checkpoint with checkpoints obtained elsewhere (earlier packs of the
  workspace, the installation's published checkpoints): the installation must be able to give a
  consistency proof (RFC 9162, section 2.1.4) between any two of them.
- Anything about other incidents or entries after the checkpoint; the pack shows only how many
  entries the log had (the tree size) and the hashes its proofs need.
- That what was recorded is true: it proves what the installation recorded, not that the people
  and systems it recorded told the truth.
`;
}
