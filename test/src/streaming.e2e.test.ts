/**
 * Large results through hoop: 1,000,000 rows (~120 MB of DataRow messages) stream from the
 * machine's PostgreSQL through agent, broker and `hoop connect` (and through the broker's native
 * Postgres endpoint, which reaches its hub through an in-process socket, and through the agent's
 * direct endpoint, with no tunnel in the data path) while the RSS of each
 * is sampled every 100 ms. Flow control must keep every hop's memory bounded however large the result and
 * however slow the reader: a reader that stops reading must stall the target, not fill a buffer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { Deployment } from './support/deployment.js';
import type { ConnectProcess } from './support/hoop.js';
import { RawPgClient } from './support/pg-wire.js';
import { psqlEnv, psqlValue, spawnPsql } from './support/psql.js';
import { idleRss, MiB, mib, type RssReport, RssSampler } from './support/rss.js';
import { machinePostgres } from './support/targets.js';
import { waitFor, withTimeout } from './support/wait.js';

const ROWS = 1_000_000;
const BIG_QUERY = `select g, repeat('x', 100) from generate_series(1, ${ROWS}) g`;

/**
 * Allowed RSS growth over the idle baseline for each hoop process while a result streams. The
 * result is ~122 MB of DataRow messages, so a hop that kept it (or any large part of it) in
 * memory would grow by more than this; measured growth with working flow control is 0–45 MiB
 * (one 1 MiB window per stream, socket buffers, and V8 heap slack that GC has not returned).
 */
const MAX_GROWTH = 100 * MiB;

type Hop = 'broker' | 'agent' | 'connect';

describe('1,000,000-row results stream with bounded memory', { timeout: 240_000 }, () => {
  const target = machinePostgres();
  let d: Deployment | undefined;
  let conn: ConnectProcess;
  let pids: Record<Hop, number>;
  let baseline: Record<Hop, number>;
  let directPort: number;

  before(
    async () => {
      d = await Deployment.start({ env: { HOOP_PG_LISTEN: '127.0.0.1:0' } });
      const { agent } = await d.addAgent('streamer', {
        env: { HOOP_AGENT_PG_LISTEN: '127.0.0.1:0' },
      });
      directPort = await agent.directPort();
      await d.addConnection('bulk', { agent: 'streamer', target });
      conn = await d.connect('bulk');
      pids = { broker: d.broker.pid, agent: agent.pid, connect: conn.pid };
      // Warm up every hop (JIT, first-session allocations, start-up garbage collected) before
      // the idle baseline is taken.
      for (let i = 0; i < 3; i++) {
        await psqlValue(
          conn.url,
          `select count(*) from (${BIG_QUERY.replace(`${ROWS}`, '20000')}) s`,
        );
        const spawned = spawnPsql(conn.url, BIG_QUERY.replace(`${ROWS}`, '50000'));
        await withTimeout(spawned.exited, 30_000, 'the warm-up stream');
      }
      const [broker, agentRss, connect] = await Promise.all([
        idleRss(pids.broker),
        idleRss(pids.agent),
        idleRss(pids.connect),
      ]);
      baseline = { broker, agent: agentRss, connect };
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
  });

  function checkGrowth<K extends Hop>(
    t: TestContext,
    report: RssReport<K>,
    hops: readonly K[] = ['broker', 'agent', 'connect'] as K[],
  ): void {
    for (const hop of hops) {
      const growth = report[hop].max - baseline[hop];
      t.diagnostic(
        `${hop}: idle ${mib(baseline[hop])}, peak ${mib(report[hop].max)}, growth ${mib(growth)}`,
      );
      assert.ok(
        growth < MAX_GROWTH,
        `${hop} RSS grew by ${mib(growth)} (idle ${mib(baseline[hop])}, peak ${mib(report[hop].max)}); the bound is ${mib(MAX_GROWTH)}`,
      );
    }
  }

  test('psql reads 1,000,000 rows through hoop', async (t) => {
    let lines = 0;
    const sampler = new RssSampler(pids).start();
    const started = Date.now();
    const psql = spawnPsql(conn.url, BIG_QUERY, {
      onStdout: (chunk) => {
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
      },
    });
    let exit: Awaited<typeof psql.exited>;
    let report: RssReport<Hop>;
    try {
      exit = await withTimeout(psql.exited, 120_000, 'psql to read 1,000,000 rows');
    } finally {
      report = sampler.stop();
      await psql.kill();
    }
    t.diagnostic(`psql read ${lines} rows in ${Date.now() - started} ms`);
    assert.equal(exit.code, 0, psql.describe());
    assert.equal(lines, ROWS);
    checkGrowth(t, report);
  });

  /** psql reads the big result from `port` with the admin token as password (no hoop connect). */
  async function readWithToken(t: TestContext, port: number, through: string): Promise<void> {
    const broker = d?.broker;
    assert.ok(broker !== undefined);
    const url = `postgresql://bulk@127.0.0.1:${port}/${target.database}?sslmode=disable`;
    let lines = 0;
    const sampler = new RssSampler({ broker: pids.broker, agent: pids.agent }).start();
    const started = Date.now();
    const psql = spawnPsql(url, BIG_QUERY, {
      // The token is the password, in the environment (never on psql's command line).
      env: psqlEnv({ PGPASSWORD: broker.adminToken }),
      onStdout: (chunk) => {
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
      },
    });
    let exit: Awaited<typeof psql.exited>;
    let report: RssReport<'broker' | 'agent'>;
    try {
      exit = await withTimeout(psql.exited, 120_000, `psql to read 1,000,000 rows ${through}`);
    } finally {
      report = sampler.stop();
      await psql.kill();
    }
    t.diagnostic(`psql read ${lines} rows ${through} in ${Date.now() - started} ms`);
    assert.equal(exit.code, 0, psql.describe());
    assert.equal(lines, ROWS);
    checkGrowth(t, report, ['broker', 'agent']);
  }

  test('psql reads 1,000,000 rows through the native endpoint, without hoop connect', async (t) => {
    const port = d?.broker.pgPort;
    assert.ok(port !== undefined, 'the broker reported no native endpoint port');
    await readWithToken(t, port, 'through the native endpoint');
  });

  test("psql reads 1,000,000 rows through the agent's direct endpoint, the broker relaying none", async (t) => {
    await readWithToken(t, directPort, 'through the direct endpoint');
  });

  test('node-postgres streams 1,000,000 rows row by row', async (t) => {
    const client = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
    await client.connect();
    const sampler = new RssSampler(pids).start();
    const started = Date.now();
    let report: RssReport<Hop>;
    try {
      let rows = 0;
      let sum = 0;
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          // A Query with a 'row' listener and no callback does not accumulate rows.
          const query = client.query(
            new pg.Query(
              'select g, repeat($1::text, 100) as pad from generate_series(1, $2::int) g',
              ['x', ROWS],
            ),
          );
          query.on('row', (row: { g: number; pad: string }) => {
            rows++;
            sum += row.g;
            if (row.pad.length !== 100)
              reject(new Error(`row ${row.g} has a ${row.pad.length}-char pad`));
          });
          query.on('error', reject);
          query.on('end', () => resolve());
        }),
        120_000,
        'node-postgres to read 1,000,000 rows',
      );
      t.diagnostic(`node-postgres read ${rows} rows in ${Date.now() - started} ms`);
      assert.equal(rows, ROWS);
      assert.equal(sum, (ROWS * (ROWS + 1)) / 2);
    } finally {
      report = sampler.stop();
      await client.end().catch(() => {});
    }
    checkGrowth(t, report);
  });

  test('a reader that stops reading stalls the target; other sessions keep flowing', async (t) => {
    // The target counts the rows it has produced in a sequence (nextval per row, visible to
    // other sessions at once), so progress at the source is observable while the reader waits.
    const sequence = `e2e_progress_${process.pid}`;
    const produced = async () =>
      Number(await psqlValue(conn.url, `select last_value from ${sequence}`));
    await psqlValue(conn.url, `create sequence ${sequence}`);
    const client = await RawPgClient.connect({
      host: '127.0.0.1',
      port: conn.port,
      user: target.user,
      database: target.database,
    });
    const sampler = new RssSampler(pids).start();
    let report: RssReport<Hop>;
    try {
      const outcome = await client.query(
        `select nextval('${sequence}') as g, repeat('y', 100) from generate_series(1, ${ROWS})`,
        {
          pauseAfterBytes: 1024 * 1024,
          whilePaused: async () => {
            // Wait until the source stops producing: two readings 300 ms apart agree.
            let previous = -1;
            const stalledAt = await waitFor(
              async () => {
                const now = await produced();
                const stable = now === previous;
                previous = now;
                return stable ? now : undefined;
              },
              { timeoutMs: 30_000, intervalMs: 300, what: 'the target to stop producing rows' },
            );
            t.diagnostic(`the target stalled after ${stalledAt} of ${ROWS} rows`);
            // In flight between target and reader is a few windows and socket buffers, not
            // the result: had any hop kept reading into memory, the target would have finished.
            assert.ok(
              stalledAt < ROWS / 2,
              `the target produced ${stalledAt} of ${ROWS} rows while the reader was paused: a hop buffered the result`,
            );
            // Another session through the same hoop connect, tunnel and agent is not blocked.
            const before = Date.now();
            assert.equal(await psqlValue(conn.url, "select 'still flowing'"), 'still flowing');
            t.diagnostic(`a second session answered in ${Date.now() - before} ms during the stall`);
            // And the stall holds.
            assert.equal(await produced(), stalledAt);
          },
        },
      );
      assert.equal(outcome.rows, ROWS);
      assert.equal(outcome.tag, `SELECT ${ROWS}`);
      assert.equal(await produced(), ROWS);
    } finally {
      report = sampler.stop();
      client.close();
      await psqlValue(conn.url, `drop sequence if exists ${sequence}`);
    }
    checkGrowth(t, report);
  });
});
