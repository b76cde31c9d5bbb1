import type { ICredentialType, INodeProperties } from 'n8n-workflow';

/**
 * Where Disparo keeps its state (PostgreSQL) and how it reaches WhatsApp (one sender account).
 * Tested by the Disparo node (`testedBy: 'disparoConnectionTest'`): it connects, migrates the schema
 * and asks the provider for the account's connection state.
 */
export class DisparoApi implements ICredentialType {
	name = 'disparoApi';

	displayName = 'Disparo API';

	icon = { light: 'file:../nodes/Disparo/disparo.svg', dark: 'file:../nodes/Disparo/disparo.dark.svg' } as const;

	documentationUrl = 'https://github.com/disparo/disparo/tree/main/examples/n8n-nodes-disparo#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'PostgreSQL Host',
			name: 'host',
			type: 'string',
			default: 'localhost',
		},
		{
			displayName: 'PostgreSQL Port',
			name: 'port',
			type: 'number',
			default: 5432,
		},
		{
			displayName: 'Database',
			name: 'database',
			type: 'string',
			default: 'postgres',
		},
		{
			displayName: 'User',
			name: 'user',
			type: 'string',
			default: 'postgres',
		},
		{
			displayName: 'Password',
			name: 'password',
			type: 'string',
			typeOptions: { password: true },
			default: '',
		},
		{
			displayName: 'SSL',
			name: 'ssl',
			type: 'boolean',
			default: false,
			description: 'Whether to connect with TLS (Supabase and most hosted PostgreSQL need it)',
		},
		{
			displayName: 'Schema',
			name: 'schema',
			type: 'string',
			default: 'disparo',
			description: "Schema holding Disparo's tables; created and migrated on first use",
		},
		{
			displayName: 'Provider',
			name: 'provider',
			type: 'options',
			options: [
				{
					name: 'Evolution API',
					value: 'evolution',
					description: 'Send through an Evolution API v2 instance',
				},
				{
					name: 'Simulator',
					value: 'simulator',
					description: 'Send nothing: a simulated WhatsApp account, for trying workflows out',
				},
				{
					name: 'WhatsApp Cloud API',
					value: 'cloudApi',
					description: "Send through Meta's official Cloud API: one WhatsApp Business number",
				},
			],
			default: 'evolution',
		},
		{
			displayName: 'Evolution API URL',
			name: 'evolutionUrl',
			type: 'string',
			default: '',
			placeholder: 'https://evolution.example.com',
			displayOptions: { show: { provider: ['evolution'] } },
		},
		{
			displayName: 'Evolution API Key',
			name: 'evolutionApiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: "The global AUTHENTICATION_API_KEY or the instance's own token",
			displayOptions: { show: { provider: ['evolution'] } },
		},
		{
			displayName: 'Evolution Instance',
			name: 'evolutionInstance',
			type: 'string',
			default: '',
			description: 'Evolution instance name: one WhatsApp number',
			displayOptions: { show: { provider: ['evolution'] } },
		},
		{
			displayName: 'Cloud API Access Token',
			name: 'cloudApiToken',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'A System User token with whatsapp_business_messaging',
			displayOptions: { show: { provider: ['cloudApi'] } },
		},
		{
			displayName: 'Phone Number ID',
			name: 'cloudApiPhoneNumberId',
			type: 'string',
			default: '',
			description: 'From WhatsApp Manager > API Setup (digits; not the phone number itself)',
			displayOptions: { show: { provider: ['cloudApi'] } },
		},
		{
			displayName: 'Messages per Second',
			name: 'cloudApiRate',
			type: 'number',
			default: 80,
			description: "The number's Cloud API limit: 80 by default, 1000 after Meta's upgrade, 20 when shared with the WhatsApp Business app",
			displayOptions: { show: { provider: ['cloudApi'] } },
		},
		{
			displayName: 'Sender Account ID',
			name: 'accountId',
			type: 'string',
			default: '',
			description:
				'Your name for this sender in Disparo (campaigns name their accounts). Empty: the Evolution instance name, or "simulator".',
		},
		{
			displayName: 'Min Seconds Between Messages',
			name: 'intervalMinSeconds',
			type: 'number',
			typeOptions: { minValue: 0 },
			default: 5,
			description: "Pacing of this account, kept in the database so it holds across executions",
		},
		{
			displayName: 'Max Seconds Between Messages',
			name: 'intervalMaxSeconds',
			type: 'number',
			typeOptions: { minValue: 0 },
			default: 15,
		},
	];
}
