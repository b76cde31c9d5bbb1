import type { IDataObject } from 'n8n-workflow';

export interface VariableMapping {
	name: string;
	value: string | number | boolean | null;
}

export interface RecipientItem {
	phone: string | number;
	vars: Record<string, string | number | boolean | null>;
}

const isScalar = (v: unknown): v is string | number | boolean | null =>
	v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * One input item as a Disparo recipient. `phone` is the node's Phone parameter, already evaluated for
 * this item (an expression such as `{{ $json.telefone }}`). Template variables come from every
 * top-level scalar field of the item (`allFields`), from the Variables list (`mapped`, each value an
 * expression evaluated per item), or not at all (`none`). Mapped names win over same-named fields.
 */
export function toRecipient(
	json: IDataObject,
	phone: string | number,
	mode: 'allFields' | 'mapped' | 'none',
	mapped: VariableMapping[],
): RecipientItem {
	const vars: Record<string, string | number | boolean | null> = {};
	if (mode === 'allFields') {
		for (const [key, value] of Object.entries(json)) if (isScalar(value)) vars[key] = value;
	}
	if (mode === 'mapped' || mode === 'allFields') {
		for (const { name, value } of mapped) {
			if (name && name.trim() !== '' && isScalar(value)) vars[name.trim()] = value;
		}
	}
	return { phone, vars };
}
