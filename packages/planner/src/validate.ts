import { type FileProblem, FileValidationError, PARAMS_BY_KIND, parseYamlWithSchema } from '@hermes-mesh/protocol';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LineCounter, parseDocument } from 'yaml';
import { dependencyCycles, type LocatedAction, planActions } from './dag.js';
import { parseDuration } from './duration.js';
import { formatCycle } from './graph.js';
import { ACTION_KINDS, Plan } from './schema.js';
import { explainSchemaProblem, pointerSegments } from './schema-messages.js';
import { didYouMean } from './similar.js';

/** A problem in a plan, located by file, line and field (a JSON pointer such as /flows/0/actions/2/after/1). */
export type Problem = FileProblem;

/** A plan that failed validation, with every problem found, not just the first. */
export class PlanValidationError extends FileValidationError {
  constructor(problems: Problem[]) {
    super(problems);
    this.name = 'PlanValidationError';
  }
}

/** Where a plan came from, so problems can name its file and lines. */
export interface PlanSource {
  file: string;
  text: string;
}

type Path = (string | number)[];
/** A problem before it is located in a file. */
interface PlanIssue {
  path: Path;
  message: string;
}

const planChecker = TypeCompiler.Compile(Plan);
const paramsCheckers = Object.fromEntries(
  Object.entries(PARAMS_BY_KIND).map(([kind, schema]) => [kind, TypeCompiler.Compile(schema)]),
);

/**
 * Reads a plan file (YAML or JSON) and checks it: first its shape against the schema, then what a schema
 * cannot say (ids, dependencies, cycles, params per kind, model names, durations). Throws
 * PlanValidationError listing every problem.
 */
export function parsePlan(text: string, file: string): Plan {
  let plan: Plan;
  try {
    plan = parseYamlWithSchema(text, Plan, file);
  } catch (error) {
    if (!(error instanceof FileValidationError)) throw error;
    const value = parsedValue(text);
    throw new PlanValidationError(error.problems.map((p) => explainSchemaProblem(p, Plan, value)));
  }
  const problems = validatePlan(plan, { file, text });
  if (problems.length > 0) throw new PlanValidationError(problems);
  return plan;
}

/**
 * Every problem in a plan, sorted by position. Without a source, problems carry the field but line 0.
 * Safe on any value: one that does not match the schema gets the schema's problems.
 */
export function validatePlan(plan: Plan, source?: PlanSource): Problem[] {
  const locate = locatorFor(source);
  if (!planChecker.Check(plan)) {
    return dedupeByField([...planChecker.Errors(plan)])
      .slice(0, 20)
      .map((e) => explainSchemaProblem(locate({ path: pointerSegments(e.path), message: e.message }), Plan, plan));
  }
  return semanticIssues(plan)
    .map(locate)
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

function semanticIssues(plan: Plan): PlanIssue[] {
  const located = planActions(plan);
  return [
    ...duplicateFlowIds(plan),
    ...duplicateActionIds(located),
    ...unknownKinds(located),
    ...invalidParams(located),
    ...unknownDependencies(located),
    ...cycles(plan, located),
    ...inputsNotInAfter(located),
    ...badModelNames(plan, located),
    ...badTimeouts(plan, located),
  ];
}

const actionPath = (a: LocatedAction): Path => ['flows', a.flowIndex, 'actions', a.actionIndex];

function duplicateFlowIds(plan: Plan): PlanIssue[] {
  const first = new Map<string, number>();
  const issues: PlanIssue[] = [];
  plan.flows.forEach((flow, i) => {
    const earlier = first.get(flow.id);
    if (earlier === undefined) first.set(flow.id, i);
    else
      issues.push({ path: ['flows', i, 'id'], message: `duplicate flow id '${flow.id}' (first at /flows/${earlier})` });
  });
  return issues;
}

/** Action ids are unique across the whole plan: `after` names actions in any flow by id alone. */
function duplicateActionIds(located: LocatedAction[]): PlanIssue[] {
  const first = new Map<string, LocatedAction>();
  const issues: PlanIssue[] = [];
  for (const a of located) {
    const earlier = first.get(a.action.id);
    if (!earlier) first.set(a.action.id, a);
    else {
      const where = `/${actionPath(earlier).join('/')}`;
      issues.push({
        path: [...actionPath(a), 'id'],
        message: `duplicate action id '${a.action.id}' (first at ${where})`,
      });
    }
  }
  return issues;
}

function unknownKinds(located: LocatedAction[]): PlanIssue[] {
  return located
    .filter((a) => !isKnownKind(a.action.kind))
    .map((a) => ({
      path: [...actionPath(a), 'kind'],
      message: `unknown action kind '${a.action.kind}': expected one of ${ACTION_KINDS.join(', ')}${didYouMean(a.action.kind, ACTION_KINDS)}`,
    }));
}

function isKnownKind(kind: string): kind is keyof typeof PARAMS_BY_KIND {
  return Object.hasOwn(PARAMS_BY_KIND, kind);
}

/** Params are checked against the schema the runner for that kind uses, so a valid plan is a runnable one. */
function invalidParams(located: LocatedAction[]): PlanIssue[] {
  return located.flatMap((a) => {
    const kind = a.action.kind;
    if (!isKnownKind(kind)) return [];
    const checker = paramsCheckers[kind]!;
    if (checker.Check(a.action.params)) return [];
    const prefix = `/${[...actionPath(a), 'params'].join('/')}`;
    const schema: TSchema = PARAMS_BY_KIND[kind];
    return dedupeByField([...checker.Errors(a.action.params)]).map((error) => {
      const field = `${prefix}${error.path}`;
      const explained = explainSchemaProblem(
        { file: '', line: 0, column: 0, field, message: error.message },
        schema,
        a.action.params,
        prefix,
      );
      return { path: pointerSegments(field), message: `${kind} params: ${explained.message}` };
    });
  });
}

function unknownDependencies(located: LocatedAction[]): PlanIssue[] {
  const ids = new Set(located.map((a) => a.action.id));
  return located.flatMap((a) =>
    (a.action.after ?? []).flatMap((dep, k) =>
      ids.has(dep)
        ? []
        : [{ path: [...actionPath(a), 'after', k], message: `unknown dependency '${dep}'${didYouMean(dep, ids)}` }],
    ),
  );
}

/** Each cycle is reported at the `after` entry that closes it: the last edge of its path. */
function cycles(plan: Plan, located: LocatedAction[]): PlanIssue[] {
  return dependencyCycles(plan).map((cycle) => {
    const waiting = cycle.at(-2)!;
    const awaited = cycle.at(-1)!;
    const holder = located.find((a) => a.action.id === waiting && a.action.after?.includes(awaited))!;
    return {
      path: [...actionPath(holder), 'after', holder.action.after!.indexOf(awaited)],
      message: `dependency cycle: ${formatCycle(cycle)}`,
    };
  });
}

/** A builtin reading another action's output must run after it, or the output may not exist yet. */
function inputsNotInAfter(located: LocatedAction[]): PlanIssue[] {
  const ids = new Set(located.map((a) => a.action.id));
  return located.flatMap((a) => {
    const after = new Set(a.action.after ?? []);
    return fromActionsOf(a.action.params).flatMap((source, k) => {
      if (after.has(source)) return [];
      const path = [...actionPath(a), 'params', 'input', 'fromActions', k];
      if (!ids.has(source))
        return [{ path, message: `input from unknown action '${source}'${didYouMean(source, ids)}` }];
      return [{ path, message: `input from '${source}', which is not in this action's after list: add it there` }];
    });
  });
}

function fromActionsOf(params: unknown): string[] {
  const input = (params as { input?: { fromActions?: unknown } } | null)?.input;
  const list = input?.fromActions;
  return Array.isArray(list) ? list.filter((s): s is string => typeof s === 'string') : [];
}

/**
 * Model names as providers spell them: `name:tag` (Ollama), `org/name` (Hugging Face, OpenRouter), or both.
 * Only the syntax is checked here; whether some node serves the model is the coordinator's question.
 */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)*(:[A-Za-z0-9][A-Za-z0-9._+-]*)?$/;

export function isValidModelName(name: string): boolean {
  return MODEL_NAME.test(name);
}

function badModelNames(plan: Plan, located: LocatedAction[]): PlanIssue[] {
  const named: { path: Path; model: string }[] = [
    ...(plan.defaults?.model === undefined ? [] : [{ path: ['defaults', 'model'], model: plan.defaults.model }]),
    ...located.flatMap((a) =>
      a.action.model === undefined ? [] : [{ path: [...actionPath(a), 'model'], model: a.action.model }],
    ),
  ];
  return named
    .filter(({ model }) => !isValidModelName(model))
    .map(({ path, model }) => ({
      path,
      message: `bad model name '${model}': use letters, digits and . _ + -, with optional provider/ or org/ prefixes and a :tag, no spaces (e.g. 'llama3.2:3b', 'openai/gpt-4o')`,
    }));
}

function badTimeouts(plan: Plan, located: LocatedAction[]): PlanIssue[] {
  const timeouts: { path: Path; timeout: string | number }[] = [
    ...(plan.defaults?.timeout === undefined
      ? []
      : [{ path: ['defaults', 'timeout'], timeout: plan.defaults.timeout }]),
    ...located.flatMap((a) =>
      a.action.timeout === undefined ? [] : [{ path: [...actionPath(a), 'timeout'], timeout: a.action.timeout }],
    ),
  ];
  return timeouts.flatMap(({ path, timeout }) => {
    const parsed = parseDuration(timeout);
    return parsed.ok ? [] : [{ path, message: `bad timeout: ${parsed.message}` }];
  });
}

/** TypeBox reports a failing union once per member; one problem per field is what a person wants. */
function dedupeByField<E extends { path: string }>(errors: E[]): E[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (seen.has(e.path)) return false;
    seen.add(e.path);
    return true;
  });
}

function parsedValue(text: string): unknown {
  try {
    return parseDocument(text).toJS();
  } catch {
    return undefined;
  }
}

/** Turns a path into a file position: the node itself, or its nearest existing parent when it is missing. */
function locatorFor(source: PlanSource | undefined): (issue: PlanIssue) => Problem {
  const lineCounter = new LineCounter();
  const doc = source ? parseDocument(source.text, { lineCounter }) : undefined;
  return ({ path, message }) => {
    const field = path.length === 0 ? '' : `/${path.join('/')}`;
    let node: unknown;
    for (let n = path.length; doc && n >= 0 && !node; n--) node = doc.getIn(path.slice(0, n), true);
    const offset = (node as { range?: [number, number] } | undefined)?.range?.[0];
    const position = offset === undefined ? { line: 0, col: 0 } : lineCounter.linePos(offset);
    return { file: source?.file ?? '', line: position.line, column: position.col, field, message };
  };
}
