import type { INodeProperties } from 'n8n-workflow';

const withCampaign = ['addRecipients', 'start', 'pause', 'resume', 'cancel', 'step', 'getProgress'];

export const properties: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		options: [
			{
				name: 'Add Recipients',
				value: 'addRecipients',
				description: 'Import the input items as recipients (phones normalised, duplicates and invalid numbers counted and skipped)',
				action: 'Add recipients to a campaign',
			},
			{
				name: 'Cancel',
				value: 'cancel',
				description: 'Cancel a campaign: nothing more is sent',
				action: 'Cancel a campaign',
			},
			{
				name: 'Create Campaign',
				value: 'createCampaign',
				description: 'Create a draft campaign for the credential’s sender account',
				action: 'Create a campaign',
			},
			{
				name: 'Get Progress',
				value: 'getProgress',
				description: 'Counts per status, current batch, rate and ETA',
				action: 'Get the progress of a campaign',
			},
			{
				name: 'Pause',
				value: 'pause',
				description: 'Pause by hand; only Resume continues it',
				action: 'Pause a campaign',
			},
			{
				name: 'Resume',
				value: 'resume',
				description: 'Resume a paused campaign',
				action: 'Resume a campaign',
			},
			{
				name: 'Run Step',
				value: 'step',
				description: 'Send a bounded slice (by default one batch) and return what is left',
				action: 'Run one step of a campaign',
			},
			{
				name: 'Start',
				value: 'start',
				description: 'Start a draft or paused campaign',
				action: 'Start a campaign',
			},
		],
		default: 'step',
	},

	// ---- campaign id (every operation but create) ----
	{
		displayName: 'Campaign ID',
		name: 'campaignId',
		type: 'string',
		required: true,
		default: '={{ $json.campaignId }}',
		description: 'The campaign to act on',
		displayOptions: { show: { operation: withCampaign } },
	},

	// ---- create ----
	{
		displayName: 'Name',
		name: 'name',
		type: 'string',
		required: true,
		default: '',
		displayOptions: { show: { operation: ['createCampaign'] } },
	},
	{
		displayName: 'Message Template',
		name: 'template',
		type: 'string',
		typeOptions: { rows: 4 },
		required: true,
		default: '',
		placeholder: '{Olá|Oi}, {{name|cliente}}! Responda SAIR para não receber mais.',
		description:
			'Text sent to each recipient: {{variable}} with an optional default ({{name|cliente}}), {a|b} picks one variant per recipient',
		displayOptions: { show: { operation: ['createCampaign'] } },
	},
	{
		displayName: 'Options',
		name: 'options',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		displayOptions: { show: { operation: ['createCampaign'] } },
		options: [
			{
				displayName: 'Batch Pause Max (Seconds)',
				name: 'batchPauseMaxSeconds',
				type: 'number',
				typeOptions: { minValue: 0 },
				default: 30,
			},
			{
				displayName: 'Batch Pause Min (Seconds)',
				name: 'batchPauseMinSeconds',
				type: 'number',
				typeOptions: { minValue: 0 },
				default: 15,
				description: 'Pause between two batches (a random value between min and max)',
			},
			{
				displayName: 'Batch Size',
				name: 'batchSize',
				type: 'number',
				typeOptions: { minValue: 1 },
				default: 300,
				description: 'Recipients per batch (the seeds’ lote)',
			},
			{
				displayName: 'Campaign ID',
				name: 'campaignId',
				type: 'string',
				default: '',
				description: 'Your own ID for the campaign (letters, digits, _ . : -). Empty: a UUID.',
			},
			{
				displayName: 'In-Doubt Policy',
				name: 'inDoubt',
				type: 'options',
				options: [
					{ name: 'At Most Once', value: 'at-most-once', description: 'A send left in doubt by a crash is never repeated' },
					{ name: 'At Least Once', value: 'at-least-once', description: 'A send left in doubt by a crash is sent again' },
				],
				default: 'at-most-once',
			},
			{
				displayName: 'Max Attempts',
				name: 'maxAttempts',
				type: 'number',
				typeOptions: { minValue: 1 },
				default: 3,
			},
		],
	},

	// ---- add recipients ----
	{
		displayName: 'Phone',
		name: 'phone',
		type: 'string',
		required: true,
		default: '={{ $json.phone }}',
		description: 'The recipient’s phone for each input item; numbers without a country code are read as Brazilian',
		displayOptions: { show: { operation: ['addRecipients'] } },
	},
	{
		displayName: 'Template Variables',
		name: 'variableSource',
		type: 'options',
		options: [
			{ name: 'All Fields of the Item', value: 'allFields', description: 'Every top-level text, number or boolean field, plus the list below' },
			{ name: 'Only the List Below', value: 'mapped' },
			{ name: 'None', value: 'none' },
		],
		default: 'allFields',
		displayOptions: { show: { operation: ['addRecipients'] } },
	},
	{
		displayName: 'Variables',
		name: 'variables',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		placeholder: 'Add Variable',
		default: {},
		displayOptions: { show: { operation: ['addRecipients'], variableSource: ['allFields', 'mapped'] } },
		options: [
			{
				displayName: 'Variable',
				name: 'variable',
				values: [
					{ displayName: 'Name', name: 'name', type: 'string', default: '', description: 'As written in the template: {{name}}' },
					{ displayName: 'Value', name: 'value', type: 'string', default: '', description: 'Usually an expression reading a field of the item' },
				],
			},
		],
	},

	// ---- step ----
	{
		displayName: 'Max Batches',
		name: 'maxBatches',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 1,
		description: 'Stop after finishing this many batches',
		displayOptions: { show: { operation: ['step'] } },
	},
	{
		displayName: 'Time Budget (Seconds)',
		name: 'budgetSeconds',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 900 },
		default: 25,
		description: 'Stop after this long even if the batch is not finished (the next step resumes it)',
		displayOptions: { show: { operation: ['step'] } },
	},

	// ---- progress ----
	{
		displayName: 'Include Batches',
		name: 'includeBatches',
		type: 'boolean',
		default: false,
		description: 'Whether to include the record of every batch',
		displayOptions: { show: { operation: ['getProgress'] } },
	},
];
