import type {
	ICredentialTestFunctions,
	ICredentialsDecrypted,
	IDataObject,
	IExecuteFunctions,
	INodeCredentialTestResult,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { openEngine, type DisparoCredentials, type OpenEngine } from './engine';
import { properties } from './properties';
import { toRecipient, type VariableMapping } from './recipients';

type Operation = 'createCampaign' | 'addRecipients' | 'start' | 'pause' | 'resume' | 'cancel' | 'step' | 'getProgress';

/** A Disparo error keeps its stable `code` (VALIDATION, NOT_FOUND, INVALID_TRANSITION...) for the UI. */
function describe(error: unknown): { message: string; description?: string } {
	if (error instanceof Error) {
		const code = (error as { code?: unknown }).code;
		return { message: error.message, ...(typeof code === 'string' ? { description: `Disparo error code: ${code}` } : {}) };
	}
	return { message: String(error) };
}

/** JSON-safe copy (drops undefined, keeps numbers and nested plain objects). */
const toJson = (value: unknown): IDataObject => JSON.parse(JSON.stringify(value)) as IDataObject;

export class Disparo implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Disparo',
		name: 'disparo',
		icon: { light: 'file:disparo.svg', dark: 'file:disparo.dark.svg' },
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"]}}',
		description: 'Durable bulk WhatsApp campaigns: batches, pacing and checkpoints kept in PostgreSQL',
		defaults: { name: 'Disparo' },
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'disparoApi', required: true, testedBy: 'disparoConnectionTest' }],
		properties,
	};

	methods = {
		credentialTest: {
			async disparoConnectionTest(
				this: ICredentialTestFunctions,
				credential: ICredentialsDecrypted,
			): Promise<INodeCredentialTestResult> {
				let open: OpenEngine | undefined;
				try {
					open = await openEngine(credential.data as unknown as DisparoCredentials);
					const [account] = await open.engine.health();
					if (account?.error) {
						return { status: 'Error', message: `The database is reachable, but the provider did not answer: ${account.error}` };
					}
					const connection = account?.connection ?? 'unknown';
					return { status: 'OK', message: `Connected; sender account "${open.accountId}" is ${connection}` };
				} catch (error) {
					return { status: 'Error', message: describe(error).message };
				} finally {
					await open?.close();
				}
			},
		},
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const operation = this.getNodeParameter('operation', 0) as Operation;
		const credentials = (await this.getCredentials('disparoApi')) as unknown as DisparoCredentials;
		let open: OpenEngine;
		try {
			open = await openEngine(credentials, this.logger);
		} catch (error) {
			throw new NodeOperationError(this.getNode(), describe(error).message, { description: describe(error).description });
		}
		const { engine } = open;
		const out: INodeExecutionData[] = [];
		try {
			if (operation === 'addRecipients') {
				// One import per campaign, all of its items in one call (streamed in chunks by the engine).
				const groups = new Map<string, { recipients: ReturnType<typeof toRecipient>[]; indices: number[] }>();
				for (let i = 0; i < items.length; i++) {
					const campaignId = String(this.getNodeParameter('campaignId', i));
					const mode = this.getNodeParameter('variableSource', i) as 'allFields' | 'mapped' | 'none';
					const mapped = this.getNodeParameter('variables.variable', i, []) as VariableMapping[];
					const phone = this.getNodeParameter('phone', i) as string | number;
					const group = groups.get(campaignId) ?? { recipients: [], indices: [] };
					group.recipients.push(toRecipient(items[i]!.json, phone, mode, mapped));
					group.indices.push(i);
					groups.set(campaignId, group);
				}
				for (const [campaignId, group] of groups) {
					try {
						const result = await engine.addRecipients(campaignId, group.recipients);
						out.push({ json: { campaignId, ...result }, pairedItem: group.indices.map((item) => ({ item })) });
					} catch (error) {
						const { message, description } = describe(error);
						if (!this.continueOnFail()) throw new NodeOperationError(this.getNode(), message, { itemIndex: group.indices[0], description });
						out.push({ json: { campaignId, error: message }, pairedItem: group.indices.map((item) => ({ item })) });
					}
				}
				return [out];
			}

			for (let i = 0; i < items.length; i++) {
				try {
					out.push({ json: await runOne(this, open, operation, i), pairedItem: { item: i } });
				} catch (error) {
					const { message, description } = describe(error);
					if (!this.continueOnFail()) throw new NodeOperationError(this.getNode(), message, { itemIndex: i, description });
					out.push({ json: { error: message }, pairedItem: { item: i } });
				}
			}
			return [out];
		} finally {
			await open.close();
		}
	}
}

async function runOne(ctx: IExecuteFunctions, open: OpenEngine, operation: Operation, i: number): Promise<IDataObject> {
	const { engine } = open;
	if (operation === 'createCampaign') {
		const options = ctx.getNodeParameter('options', i, {}) as IDataObject;
		const id = String(options.campaignId ?? '').trim();
		const seconds = (v: unknown, fallback: number) => Math.round(Number(v ?? fallback) * 1000);
		const pauseMin = seconds(options.batchPauseMinSeconds, 15);
		const campaign = await engine.createCampaign({
			...(id ? { id } : {}),
			name: ctx.getNodeParameter('name', i) as string,
			template: ctx.getNodeParameter('template', i) as string,
			accountIds: [open.accountId],
			batchSize: Number(options.batchSize ?? 300),
			batchPauseMs: { min: pauseMin, max: Math.max(pauseMin, seconds(options.batchPauseMaxSeconds, 30)) },
			maxAttempts: Number(options.maxAttempts ?? 3),
			inDoubt: (options.inDoubt as 'at-most-once' | 'at-least-once' | undefined) ?? 'at-most-once',
		});
		return toJson({ campaignId: campaign.id, ...campaign });
	}
	const campaignId = String(ctx.getNodeParameter('campaignId', i));
	switch (operation) {
		case 'start':
			return toJson({ campaignId, ...(await engine.start(campaignId)) });
		case 'pause':
			return toJson({ campaignId, ...(await engine.pause(campaignId)) });
		case 'resume':
			return toJson({ campaignId, ...(await engine.resume(campaignId)) });
		case 'cancel':
			return toJson({ campaignId, ...(await engine.cancel(campaignId)) });
		case 'step': {
			const maxBatches = Number(ctx.getNodeParameter('maxBatches', i, 1));
			const budgetMs = Math.round(Number(ctx.getNodeParameter('budgetSeconds', i, 25)) * 1000);
			const result = await engine.step({ campaignId, maxBatches, budgetMs });
			return toJson({ campaignId, ...result, continueAt: result.continueAt === null ? null : new Date(result.continueAt).toISOString() });
		}
		case 'getProgress': {
			const includeBatches = ctx.getNodeParameter('includeBatches', i, false) as boolean;
			const progress = await engine.progress(campaignId);
			return toJson(includeBatches ? progress : { ...progress, batches: undefined });
		}
		default:
			throw new NodeOperationError(ctx.getNode(), `Unknown operation "${String(operation)}"`, { itemIndex: i });
	}
}
