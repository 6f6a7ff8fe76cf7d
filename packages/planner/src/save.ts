import { writeFile } from 'node:fs/promises';
import { Document } from 'yaml';
import type { Plan } from './schema.js';

const HEADER = [
  ' hermes-mesh plan. Edit it and submit it again: hermes-coord submit --plan <this file>',
  ' Each action runs after the actions listed in its `after` (ids from any flow); the rest run in parallel.',
].join('\n');

/** The plan as YAML a person can edit; parsePlan reads it back to an equal plan. */
export function stringifyPlan(plan: Plan): string {
  const doc = new Document(plan);
  doc.commentBefore = HEADER;
  return doc.toString({ lineWidth: 120, minContentWidth: 40 });
}

export async function savePlan(plan: Plan, path: string): Promise<void> {
  await writeFile(path, stringifyPlan(plan), 'utf8');
}
