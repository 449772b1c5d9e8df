/**
 * close_sign_in_bursts (every minute): records each account's burst of failed sign-ins that has
 * ended (15 minutes after its first failure) as one session.sign_in_failed entry with the count
 * and the first and last time (app_private.close_ended_sign_in_bursts). Nothing is recorded per
 * attempt; a burst also ends early when the account signs in or fails again after its window.
 */
import type { Task } from "graphile-worker";

export const closeSignInBursts: Task = async (_payload, helpers) => {
  const closed = await helpers.withPgClient(async (client) => {
    await client.query("begin");
    try {
      await client.query("select set_config('attest.surface', 'worker', true)");
      const { rows } = await client.query<{ n: number }>("select app_private.close_ended_sign_in_bursts() as n");
      await client.query("commit");
      return rows[0].n;
    } catch (error) {
      await client.query("rollback");
      throw error;
    }
  });
  if (closed > 0) helpers.logger.info(`recorded ${closed} ended burst(s) of failed sign-ins`);
};
