/*
 * graphile-migrate settings for writing migrations with its CLI
 * (`npx graphile-migrate watch`, `npx graphile-migrate commit`); see migrations/CONVENTIONS.md.
 * `npm start` and `npm run migrate` do not read this file: src/db/setup.ts passes the same
 * settings, with role names derived from the database name.
 *
 * Needs DATABASE_URL (logged in as, or with `?options=-c%20role%3D<owner>` acting as, the owner),
 * SHADOW_DATABASE_URL, ROOT_DATABASE_URL, and the role names in DATABASE_OWNER,
 * DATABASE_AUTHENTICATOR, DATABASE_VISITOR and DATABASE_REPORTING.
 */
module.exports = {
  databaseOwner: process.env.DATABASE_OWNER,
  placeholders: {
    ":DATABASE_AUTHENTICATOR": "!ENV",
    ":DATABASE_VISITOR": "!ENV",
    ":DATABASE_REPORTING": "!ENV",
    ":DATABASE_SEALER": "!ENV",
  },
  afterReset: [],
  afterAllMigrations: [],
};
