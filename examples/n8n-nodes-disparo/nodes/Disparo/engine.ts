import { createEngine, createSimulatorTransport, type Engine } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { createCloudApiTransport } from '@disparo/transport-cloud-api';
import { createEvolutionTransport } from '@disparo/transport-evolution';
import { Pool } from 'pg';

/** The `disparoApi` credential's fields (see credentials/DisparoApi.credentials.ts). */
export interface DisparoCredentials {
	host: string;
	port: number;
	database: string;
	user: string;
	password?: string;
	ssl?: boolean;
	schema?: string;
	provider: string;
	evolutionUrl?: string;
	evolutionApiKey?: string;
	evolutionInstance?: string;
	cloudApiToken?: string;
	cloudApiPhoneNumberId?: string;
	cloudApiRate?: number;
	/** Tests only: where the Graph API is (not a credential field). */
	cloudApiBaseUrl?: string;
	accountId?: string;
	intervalMinSeconds?: number;
	intervalMaxSeconds?: number;
}

export interface LoggerLike {
	debug(message: string, meta?: Record<string, unknown>): void;
	info(message: string, meta?: Record<string, unknown>): void;
	warn(message: string, meta?: Record<string, unknown>): void;
	error(message: string, meta?: Record<string, unknown>): void;
}

export interface OpenEngine {
	engine: Engine;
	/** The sender account campaigns created by this node use. */
	accountId: string;
	close(): Promise<void>;
}

export function accountIdOf(c: DisparoCredentials): string {
	if (c.accountId && c.accountId.trim() !== '') return c.accountId.trim();
	if (c.provider === 'evolution' && c.evolutionInstance) return c.evolutionInstance;
	if (c.provider === 'cloudApi' && c.cloudApiPhoneNumberId) return `cloud-${c.cloudApiPhoneNumberId.trim()}`;
	return c.provider;
}

function createTransport(c: DisparoCredentials) {
	switch (c.provider) {
		case 'evolution':
			return createEvolutionTransport({
				baseUrl: c.evolutionUrl ?? '',
				apiKey: c.evolutionApiKey ?? '',
				instance: c.evolutionInstance ?? '',
			});
		case 'simulator':
			return createSimulatorTransport({ name: accountIdOf(c) });
		case 'cloudApi':
			return createCloudApiTransport({
				accessToken: c.cloudApiToken ?? '',
				phoneNumberId: (c.cloudApiPhoneNumberId ?? '').trim(),
				...(c.cloudApiBaseUrl ? { baseUrl: c.cloudApiBaseUrl } : {}),
			});
		default:
			throw new Error(`Unknown provider "${c.provider}" in the Disparo credential: pick Evolution API, WhatsApp Cloud API or Simulator.`);
	}
}

/**
 * One engine for one execution: a small pool on the credential's database, the schema migrated (safe
 * from concurrent executions: migrations take an advisory lock), and the credential's sender account.
 * State lives in PostgreSQL, so nothing is kept between executions; `close()` releases the pool.
 */
export async function openEngine(c: DisparoCredentials, logger?: LoggerLike): Promise<OpenEngine> {
	const transport = createTransport(c);
	const pool = new Pool({
		host: c.host,
		port: Number(c.port),
		database: c.database,
		user: c.user,
		password: c.password ?? '',
		ssl: c.ssl ? true : undefined,
		max: 4,
	});
	// An idle connection dropped by the server must not crash n8n; the next query reconnects.
	pool.on('error', (error) => logger?.warn(`Disparo: idle PostgreSQL connection closed: ${error.message}`));
	let opened = false;
	try {
		const store = createPostgresStore(pool, { schema: c.schema?.trim() || 'disparo' });
		await store.migrate();
		const accountId = accountIdOf(c);
		const min = Math.round(Number(c.intervalMinSeconds ?? 5) * 1000);
		const max = Math.max(min, Math.round(Number(c.intervalMaxSeconds ?? 15) * 1000));
		// The Cloud API is paced by rate (with sends overlapping on the wire); unofficial providers by a human interval.
		const rate = Number(c.cloudApiRate ?? 80);
		const pacing = c.provider === 'cloudApi' ? { ratePerSecond: rate, maxInFlight: Math.max(1, Math.ceil(rate * 0.4)) } : { intervalMs: { min, max } };
		const engine = createEngine({
			store,
			accounts: [{ id: accountId, transport, pacing }],
			...(logger ? { logger } : {}),
		});
		opened = true;
		return {
			engine,
			accountId,
			async close() {
				await engine.stop();
				await pool.end();
			},
		};
	} finally {
		if (!opened) await pool.end();
	}
}
