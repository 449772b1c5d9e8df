/**
 * RFC 9162 hashing and proof verification (src/audit/merkle.ts), checked against the RFC 6962 /
 * RFC 9162 test vectors published with the transparency-dev/merkle Go implementation (an
 * independent implementation), and by property: every proof of random trees verifies, and no
 * corruption of one does.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  consistencyProofOf,
  emptyRoot,
  hashLeaf,
  inclusionProofOf,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from "../../src/audit/merkle.ts";

const h = (hex: string) => Buffer.from(hex, "hex");

// Test vectors of transparency-dev/merkle (proof/verify_test.go), originally from RFC 6962 implementations.
const leaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(
  h,
);
const roots = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
].map(h);
const inclusionVectors: Array<{ leaf: number; size: number; proof: string[] }> = [
  {
    leaf: 1,
    size: 8,
    proof: [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  },
  {
    leaf: 6,
    size: 8,
    proof: [
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  },
  { leaf: 3, size: 3, proof: ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"] },
  {
    leaf: 2,
    size: 5,
    proof: [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  },
];
const consistencyVectors: Array<{ size1: number; size2: number; proof: string[] }> = [
  {
    size1: 1,
    size2: 8,
    proof: [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: [
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  },
];

const leafHashes = leaves.map(hashLeaf);

describe("RFC 9162 Merkle trees", () => {
  it("hashes the empty tree and the vector trees to the published roots", () => {
    expect(emptyRoot().toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (let size = 1; size <= 8; size++) {
      expect(rootOf(leafHashes.slice(0, size)).toString("hex"), `size ${size}`).toBe(roots[size - 1].toString("hex"));
    }
  });

  it("produces and verifies the published inclusion proofs", () => {
    for (const v of inclusionVectors) {
      const index = v.leaf - 1;
      const tree = leafHashes.slice(0, v.size);
      expect(inclusionProofOf(index, tree).map((b) => b.toString("hex"))).toEqual(v.proof);
      expect(verifyInclusion(index, v.size, leafHashes[index], v.proof.map(h), roots[v.size - 1])).toBe(true);
    }
  });

  it("produces and verifies the published consistency proofs", () => {
    for (const v of consistencyVectors) {
      const tree = leafHashes.slice(0, v.size2);
      expect(consistencyProofOf(v.size1, tree).map((b) => b.toString("hex"))).toEqual(v.proof);
      expect(verifyConsistency(v.size1, v.size2, v.proof.map(h), roots[v.size1 - 1], roots[v.size2 - 1])).toBe(true);
    }
  });

  it("refuses the corrupted inclusion proofs of the reference suite", () => {
    for (const v of inclusionVectors) {
      const index = v.leaf - 1;
      const proof = v.proof.map(h);
      const root = roots[v.size - 1];
      const leaf = leafHashes[index];
      const wrong: Array<[number, number, Buffer, Buffer[], Buffer]> = [
        [index - 1, v.size, leaf, proof, root],
        [index + 1, v.size, leaf, proof, root],
        [index ^ 2, v.size, leaf, proof, root],
        [index, v.size * 2, leaf, proof, root],
        [index, Math.floor(v.size / 2), leaf, proof, root],
        [index, v.size, hashLeaf(Buffer.from("WrongLeaf")), proof, root],
        [index, v.size, leaf, proof, emptyRoot()],
        [index, v.size, leaf, [...proof, root], root],
        [index, v.size, leaf, [root, ...proof], root],
        [index, v.size, leaf, proof.slice(0, -1), root],
      ];
      for (const [i, size, l, p, r] of wrong) expect(verifyInclusion(i, size, l, p, r)).toBe(false);
      for (let k = 0; k < proof.length; k++) {
        const flipped = proof.map((b) => Buffer.from(b));
        flipped[k][0] ^= 8;
        expect(verifyInclusion(index, v.size, leaf, flipped, root)).toBe(false);
      }
    }
  });

  it("refuses the corrupted consistency proofs of the reference suite", () => {
    for (const v of consistencyVectors) {
      const proof = v.proof.map(h);
      const [r1, r2] = [roots[v.size1 - 1], roots[v.size2 - 1]];
      const wrong: Array<[number, number, Buffer[], Buffer, Buffer]> = [
        [v.size1 - 1, v.size2, proof, r1, r2],
        [v.size1 + 1, v.size2, proof, r1, r2],
        [v.size1 ^ 2, v.size2, proof, r1, r2],
        [v.size1, v.size2 * 2, proof, r1, r2],
        [v.size1, Math.floor(v.size2 / 2), proof, r1, r2],
        [v.size1, v.size2, proof, r2, r1],
        [v.size1, v.size2, [], r1, r2],
        [v.size1, v.size2, [...proof, r1], r1, r2],
        [v.size1, v.size2, [r2, ...proof], r1, r2],
        [v.size1, v.size2, proof.slice(0, -1), r1, r2],
      ];
      for (const [s1, s2, p, a, b] of wrong) expect(verifyConsistency(s1, s2, p, a, b)).toBe(false);
      for (let k = 0; k < proof.length; k++) {
        const flipped = proof.map((b) => Buffer.from(b));
        flipped[k][0] ^= 16;
        expect(verifyConsistency(v.size1, v.size2, flipped, r1, r2)).toBe(false);
      }
    }
  });

  it("verifies every proof of random trees and refuses any flipped bit (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), fc.nat(), (size, a, b, bit) => {
        const tree = Array.from({ length: size }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
        const root = rootOf(tree);
        const index = a % size;
        const proof = inclusionProofOf(index, tree);
        expect(verifyInclusion(index, size, tree[index], proof, root)).toBe(true);
        if (proof.length > 0) {
          const bad = proof.map((p) => Buffer.from(p));
          bad[bit % bad.length][bit % 32] ^= 1 << (bit % 8);
          expect(verifyInclusion(index, size, tree[index], bad, root)).toBe(false);
        }
        const old = (b % size) + 1;
        const cproof = consistencyProofOf(old, tree);
        expect(verifyConsistency(old, size, cproof, rootOf(tree.slice(0, old)), root)).toBe(true);
        if (cproof.length > 0) {
          const bad = cproof.map((p) => Buffer.from(p));
          bad[bit % bad.length][bit % 32] ^= 1 << (bit % 8);
          expect(verifyConsistency(old, size, bad, rootOf(tree.slice(0, old)), root)).toBe(false);
        }
      }),
      { seed: 9162, numRuns: 2000 },
    );
  });
});
