--! Previous: sha1:e984b57c7d20213356f096fe180d8c989fa07a2f
--! Hash: sha1:b2ce99a77fe814ed7f33b210e33d27831cfe73bd
--! Message: no-jit-sealing

-- 000056 Sealing and naming run without JIT compilation.
--
-- Once PostgreSQL's statistics know how large the log is, the sealer's round query (up to 50,000
-- entries: a window over the batch, each body built from its row) is priced above jit_above_cost,
-- and PostgreSQL compiles it on every round: measured on a 400,000-entry log with fresh
-- statistics, ~0.35-0.4 s of compilation in a round of 50,000 entries (1.55 s instead of
-- 1.16-1.26 s), paid again by the next round, and as much by a round of a few entries whose plan
-- is priced the same. The naming round's statements are of the same kind. The verifier's functions
-- already set jit = off (000040); the server's connections too (src/db/pools.ts). Set on the
-- functions themselves, it holds whoever calls them: the worker's sealer, the benchmarks, a DBA.
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The running sealer finishes its round first.
select pg_advisory_xact_lock(7295061840133851321);

alter function app_private.seal_audit_entries(int) set jit = off;
alter function app_private.name_audit_entries(int) set jit = off;
alter function app_private.tidy_audit_names(app_private.audit_label_state) set jit = off;

set local role :DATABASE_OWNER;
