import { PARAMS_BY_KIND } from '@hermes-mesh/protocol';
import { type TSchema, Type } from '@sinclair/typebox';
import { PlanAction, PlanFlow, Plan as PlanSchema } from './schema.js';

/**
 * The plan schema as a model is asked to fill it (OpenAI `response_format: json_schema`, strict).
 * Two differences from the file schema, both for the model's sake:
 * - each kind is its own action shape with its real params schema, so the model is guided into valid params
 *   instead of being told about them afterwards;
 * - strict structured output wants every property required and no open-ended maps, so optional fields become
 *   nullable (nulls are dropped from the reply before validation) and `labels` is left out.
 * Whatever the model returns is still validated exactly like a file.
 */
export function planResponseSchema(): Record<string, unknown> {
  const flow = Type.Object(
    { ...PlanFlow.properties, actions: Type.Array(Type.Union(actionVariants()), { minItems: 1 }) },
    { additionalProperties: false },
  );
  const plan = Type.Object(
    { ...PlanSchema.properties, flows: Type.Array(flow, { minItems: 1 }) },
    { additionalProperties: false },
  );
  return toStrictJsonSchema(plan);
}

/** One action shape per kind, with that kind's real params schema. */
function actionVariants(): TSchema[] {
  const { labels: _labels, kind: _kind, params: _params, id, description, after, ...placement } = PlanAction.properties;
  // Id and kind first: a model writes fields in schema order, and the kind decides what the params are.
  return Object.entries(PARAMS_BY_KIND).map(([kind, params]) =>
    Type.Object(
      { id, kind: Type.Literal(kind), description, after, params, ...placement },
      { additionalProperties: false },
    ),
  );
}

/** A verifier's answer to a failed action: replace it with another action, or give up (strict, as above). */
export function fallbackResponseSchema(): Record<string, unknown> {
  return toStrictJsonSchema(
    Type.Object(
      {
        decision: Type.Union([Type.Literal('replace'), Type.Literal('abort')]),
        reason: Type.String({ minLength: 1, maxLength: 4000 }),
        action: Type.Optional(Type.Union(actionVariants())),
      },
      { additionalProperties: false },
    ),
  );
}

/** Keywords strict structured output rejects; the validation of the reply enforces them anyway. */
const UNSUPPORTED_KEYWORDS = ['minLength', 'maxLength', 'minProperties', 'maxProperties', 'patternProperties'];

/** A plain JSON Schema where every object lists all its properties as required, optional ones nullable. */
export function toStrictJsonSchema(schema: TSchema): Record<string, unknown> {
  return strictNode(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>);
}

function strictNode(node: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (UNSUPPORTED_KEYWORDS.includes(key)) continue;
    if (key === 'properties') out.properties = strictProperties(node);
    else if (key === 'items') out.items = strictNode(value as Record<string, unknown>);
    else if (key === 'anyOf') out.anyOf = (value as Record<string, unknown>[]).map(strictNode);
    else out[key] = value;
  }
  if (node.type === 'object') {
    out.required = Object.keys((node.properties as object | undefined) ?? {});
    out.additionalProperties = false;
  }
  return out;
}

function strictProperties(node: Record<string, unknown>): Record<string, unknown> {
  const required = new Set((node.required as string[] | undefined) ?? []);
  const properties = node.properties as Record<string, Record<string, unknown>>;
  return Object.fromEntries(
    Object.entries(properties).map(([name, property]) => {
      const strict = strictNode(property);
      return [name, required.has(name) ? strict : nullable(strict)];
    }),
  );
}

function nullable(schema: Record<string, unknown>): Record<string, unknown> {
  const nullType = { type: 'null' };
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, nullType] };
  return { anyOf: [schema, nullType] };
}

/** Strict output spells "absent" as null; the plan file spells it by leaving the field out. */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, dropNulls(v)]),
  );
}
