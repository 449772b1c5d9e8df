/**
 * `npm run --silent guard-sql`: prints the DDL guard's SQL (src/db/guard.ts) for a DBA to run as a
 * superuser on an install whose setup login is not a superuser, after its first migration.
 */
import { guardSql } from "./guard.ts";

process.stdout.write(`${guardSql.trim()}\n`);
