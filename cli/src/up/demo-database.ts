/**
 * The demo target for `hoop up`: an embedded PostgreSQL (PGlite) served over TCP on loopback,
 * holding a small `customers` table of fake people — names, emails, card numbers — so a first
 * run has something real to query (and, later, to mask).
 */
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { initializePgliteDataDir } from '@hoop/broker';

export interface DemoDatabase {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  close(): Promise<void>;
}

const first = [
  'Ada',
  'Grace',
  'Alan',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'Ken',
  'Radia',
  'Linus',
  'Margaret',
  'Dennis',
];
const last = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Perlman',
  'Torvalds',
  'Hamilton',
  'Ritchie',
];

/** A Luhn-valid 16-digit test card number starting 4000 (a test BIN), derived from `n`. */
export function fakeCardNumber(n: number): string {
  const body = `4000${String(100_000_000_00 + n * 7_919)
    .padStart(11, '0')
    .slice(-11)}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

export function demoCustomers(
  count = 24,
): Array<{ name: string; email: string; card: string; country: string }> {
  const countries = ['GB', 'US', 'NL', 'DE', 'FR', 'BR', 'JP', 'CA'];
  return Array.from({ length: count }, (_, i) => {
    const f = first[i % first.length] as string;
    const l = last[(i * 5) % last.length] as string;
    return {
      name: `${f} ${l}`,
      email: `${f}.${l}${i}@example.com`.toLowerCase(),
      card: fakeCardNumber(i + 1),
      country: countries[i % countries.length] as string,
    };
  });
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startDemoDatabase(options: {
  dataDir: string;
  host?: string;
  port?: number;
}): Promise<DemoDatabase> {
  const host = options.host ?? '127.0.0.1';
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  await initializePgliteDataDir(options.dataDir);
  const db = await PGlite.create(options.dataDir);
  await db.exec(`
    create table if not exists customers (
      id serial primary key,
      name text not null,
      email text not null,
      card_number text not null,
      country text not null,
      created_at timestamptz not null default now()
    )`);
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from customers');
  if ((rows[0]?.n ?? 0) === 0) {
    for (const c of demoCustomers()) {
      await db.query(
        'insert into customers (name, email, card_number, country) values ($1, $2, $3, $4)',
        [c.name, c.email, c.card, c.country],
      );
    }
  }
  const port = options.port ?? (await freePort(host));
  const server = new PGLiteSocketServer({ db, host, port, maxConnections: 32 });
  await server.start();
  return {
    host,
    port,
    user: 'postgres',
    database: 'postgres',
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
