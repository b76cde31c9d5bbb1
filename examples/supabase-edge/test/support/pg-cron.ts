/**
 * pg_cron for real: a throw-away PostgreSQL 15 cluster from Debian's packages with pg_cron preloaded,
 * and a stand-in for Supabase's pg_net (`net.http_post`) in PL/Python, so that a cron job's SQL is the
 * SQL that runs on Supabase.
 *
 * Needs (Debian bookworm): postgresql-15, postgresql-15-cron (pg_cron 1.4), postgresql-plpython3-15.
 * Without them `requirePgCron()` fails loudly with the apt-get line, unless DISPARO_SKIP_PG_CRON=1 says
 * to skip those tests on purpose.
 *
 * The net.http_post stand-in has pg_net's signature, defaults and return value (a bigint request id)
 * and records the response in pg_net's `net._http_response` table. Unlike pg_net, it POSTs
 * synchronously, inside the calling transaction: the caller waits for the response, and the request
 * is sent even if that transaction later rolls back. (pg_net queues the request and its background
 * worker sends it after commit. A thread of the backend cannot stand in for that worker: pg_cron runs
 * each job on a connection of its own and closes it when the job's SQL returns, ending the backend.)
 * One consequence under pg_cron: a job's run lasts as long as the HTTP call, and pg_cron does not start
 * the same job again while a run is still going, so cron-driven calls never overlap here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_BIN_DIR = process.env.PG_CRON_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
export const DEBIAN_PACKAGES = ['postgresql-15', 'postgresql-15-cron', 'postgresql-plpython3-15'];
export const INSTALL_HINT = `apt-get update && apt-get install -y ${DEBIAN_PACKAGES.join(' ')}`;

const pgConfig = (flag: string): string | undefined => {
  const out = spawnSync(join(PG_BIN_DIR, 'pg_config'), [flag], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : undefined;
};

/** What is missing for the pg_cron tests (empty when all is there). */
export function missingForPgCron(): string[] {
  const missing: string[] = [];
  for (const bin of ['initdb', 'pg_ctl', 'postgres', 'pg_config']) if (!existsSync(join(PG_BIN_DIR, bin))) missing.push(`${join(PG_BIN_DIR, bin)} (postgresql-15)`);
  if (missing.length > 0) return missing;
  const lib = pgConfig('--pkglibdir');
  const share = pgConfig('--sharedir');
  if (!lib || !existsSync(join(lib, 'pg_cron.so')) || !share || !existsSync(join(share, 'extension', 'pg_cron.control'))) missing.push('pg_cron (postgresql-15-cron)');
  if (!lib || !existsSync(join(lib, 'plpython3.so'))) missing.push('PL/Python 3 (postgresql-plpython3-15)');
  return missing;
}

/**
 * True when the pg_cron tests should run. Throws, with what to install, when the packages are missing,
 * unless DISPARO_SKIP_PG_CRON=1 opts out (then false, and the caller skips).
 */
export function requirePgCron(): boolean {
  const missing = missingForPgCron();
  if (missing.length === 0) return true;
  if (process.env.DISPARO_SKIP_PG_CRON === '1') return false;
  throw new Error(
    `The pg_cron tests need PostgreSQL 15 with pg_cron and PL/Python from Debian, and this machine lacks: ${missing.join(', ')}.\n` +
      `Install them (as root): ${INSTALL_HINT}\n` +
      `or set DISPARO_SKIP_PG_CRON=1 to skip these tests on purpose.`,
  );
}

/** Supabase's pg_net API, narrowed to http_post, with its response table; see the module comment. */
export const NET_STAND_IN_SQL = `
CREATE EXTENSION IF NOT EXISTS plpython3u;
CREATE SCHEMA net;
-- pg_net's ids come from its request queue's bigserial.
CREATE SEQUENCE net.http_request_queue_id_seq;
CREATE TABLE net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON net._http_response (created);

CREATE FUNCTION net.http_post(
  url text,
  body jsonb DEFAULT '{}'::jsonb,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
) RETURNS bigint LANGUAGE plpython3u VOLATILE PARALLEL SAFE AS $py$
import json, socket, urllib.error, urllib.parse, urllib.request
request_id = plpy.execute("SELECT nextval('net.http_request_queue_id_seq') AS id")[0]["id"]
hdrs = json.loads(headers) if headers is not None else {}
content_type = next((v for k, v in hdrs.items() if k.lower() == 'content-type'), None)
if content_type is None:
    hdrs['Content-Type'] = 'application/json'
elif content_type != 'application/json':
    plpy.error('Content-Type header must be "application/json"')
if body is None:
    plpy.error('body must not be null')
query = json.loads(params) if params is not None else {}
target = url if not query else url + ('&' if '?' in url else '?') + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
status = response_type = response_headers = content = error = None
timed_out = False
try:
    req = urllib.request.Request(target, data=body.encode('utf-8'), headers=hdrs, method='POST')
    with urllib.request.urlopen(req, timeout=timeout_milliseconds / 1000.0) as res:
        status, response_type, response_headers = res.status, res.headers.get('content-type'), dict(res.headers.items())
        content = res.read().decode('utf-8', 'replace')
except urllib.error.HTTPError as e:
    status, response_type, response_headers = e.code, e.headers.get('content-type'), dict(e.headers.items())
    content = e.read().decode('utf-8', 'replace')
except (socket.timeout, TimeoutError):
    timed_out, error = True, 'Timeout of %d ms reached' % timeout_milliseconds
except Exception as e:
    error = str(getattr(e, 'reason', e))
plan = plpy.prepare(
    "INSERT INTO net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    ["bigint", "integer", "text", "jsonb", "text", "boolean", "text"])
plpy.execute(plan, [request_id, status, response_type, None if response_headers is None else json.dumps(response_headers), content, timed_out, error])
return request_id
$py$;
`;

/**
 * Supabase Vault's read side, as the jobs use it: `vault.create_secret(secret, name)` and the
 * `vault.decrypted_secrets` view with `name` and `decrypted_secret`. A stand-in (supabase_vault is not
 * packaged for Debian): it keeps the secrets in clear, in a throw-away test database.
 */
export const VAULT_STAND_IN_SQL = `
CREATE SCHEMA vault;
CREATE TABLE vault.secrets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text UNIQUE,
  description text NOT NULL DEFAULT '',
  secret text NOT NULL,
  key_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE VIEW vault.decrypted_secrets AS
  SELECT id, name, description, secret, secret AS decrypted_secret, key_id, created_at, updated_at FROM vault.secrets;
CREATE FUNCTION vault.create_secret(new_secret text, new_name text DEFAULT NULL, new_description text DEFAULT '', new_key_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE sql AS $$
  INSERT INTO vault.secrets (secret, name, description, key_id) VALUES (new_secret, new_name, new_description, new_key_id) RETURNING id
$$;
`;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

export interface CronPostgres {
  /** The test database, as the `postgres` superuser (trust authentication on 127.0.0.1). */
  url: string;
  database: string;
  port: number;
  /** The server log so far (pg_cron logs each run it starts). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL 15 in a new temp folder with `shared_preload_libraries = 'pg_cron'` and
 * `cron.database_name` = the test database, on a free port of 127.0.0.1, and creates the pg_cron,
 * plpython3u and net stand-in objects in that database. As root it runs the server as the `postgres`
 * OS user (PostgreSQL refuses root), which Debian's postgresql packages create.
 */
export async function startCronPostgres(options: { database?: string } = {}): Promise<CronPostgres> {
  const database = options.database ?? 'disparo_cron';
  const dir = mkdtempSync(join(tmpdir(), 'disparo-pgcron-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const run = (bin: string, args: string[], input?: string) => {
    const cmd = join(PG_BIN_DIR, bin);
    const result = asRoot
      ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', input, cwd: dir })
      : spawnSync(cmd, args, { encoding: 'utf8', input, cwd: dir });
    if (result.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}${existsSync(logFile) ? `\n${readFileSync(logFile, 'utf8')}` : ''}`);
    return result.stdout;
  };
  const port = await freePort();
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  // The database pg_cron lives in must exist when its launcher starts: create it in single-user mode.
  run('postgres', ['--single', '-D', data, '-F', 'postgres'], `CREATE DATABASE ${database};\n`);
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `shared_preload_libraries = 'pg_cron'`,
      `cron.database_name = '${database}'`,
      // pg_cron connects to the server with libpq to run each job (trust authentication here).
      `cron.host = '127.0.0.1'`,
      `fsync = off`,
      `log_min_messages = log`,
    ].join('\n') + '\n',
  );
  run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/${database}`;
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query('CREATE EXTENSION pg_cron');
    await client.query(NET_STAND_IN_SQL);
  } catch (error) {
    run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
  let stopped = false;
  return {
    url,
    database,
    port,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) => {
        const args = ['-D', data, '-m', 'fast', '-w', 'stop'];
        const child = asRoot ? spawn('runuser', ['-u', 'postgres', '--', join(PG_BIN_DIR, 'pg_ctl'), ...args]) : spawn(join(PG_BIN_DIR, 'pg_ctl'), args);
        child.on('exit', () => resolve());
        child.on('error', () => resolve());
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
