import { writeFileSync } from 'node:fs';
import { workflowFile, workflowJson } from './workflow.js';

writeFileSync(workflowFile, workflowJson());
console.log(`wrote ${workflowFile}`);
