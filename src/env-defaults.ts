/**
 * Defaults for environment variables that libraries read when they are imported. Imported first
 * by every entry point, before anything that loads PostGraphile.
 */
process.env.GRAPHILE_ENV ??= "production";
