/**
 * The helper functions an exercise cell uses from other cells of its notebook. The grader and the self-check both
 * evaluate the exercise cell alone (cell.ts) together with these helpers, and nothing else from the notebook:
 *
 * - included: top-level `function name(…) {…}` declarations and `const name = (…) => …` / `const name = function …`
 *   statements of other code cells, when the exercise cell (or an included helper) mentions the name and does not
 *   declare it itself; the last definition wins (the grader: in file order; the self-check: in the order cells ran);
 * - not included: anything else — constants, data, imports, classes, statements with side effects. Such names must be
 *   defined in the exercise cell (the self-check and the report say which one was missing).
 *
 * Declaring a function has no side effect, so including one that turns out unused is harmless.
 */
import type * as TS from 'typescript';

export interface Helper {
  name: string;
  /** The statement's source text. */
  text: string;
  /** Index of the source (cell) it came from, in the list given. */
  from: number;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const typescript = (): typeof TS => require('typescript') as typeof TS;

function parse(source: string): TS.SourceFile {
  const ts = typescript();
  return ts.createSourceFile('cell.ts', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

/** Names a cell declares at its top level (functions, classes, variables, imports, enums). */
export function topLevelNames(source: string): Set<string> {
  const ts = typescript();
  const names = new Set<string>();
  const addBinding = (b: TS.BindingName) => {
    if (ts.isIdentifier(b)) names.add(b.text);
    else for (const el of b.elements) if (!ts.isOmittedExpression(el)) addBinding(el.name);
  };
  for (const st of parse(source).statements) {
    if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isEnumDeclaration(st)) && st.name) names.add(st.name.text);
    else if (ts.isVariableStatement(st)) st.declarationList.declarations.forEach((d) => addBinding(d.name));
    else if (ts.isImportDeclaration(st) && st.importClause) {
      const c = st.importClause;
      if (c.name) names.add(c.name.text);
      const nb = c.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) names.add(nb.name.text);
      else if (nb && ts.isNamedImports(nb)) nb.elements.forEach((e) => names.add(e.name.text));
    } else if (ts.isImportEqualsDeclaration(st)) names.add(st.name.text);
  }
  return names;
}

/** The function-defining top-level statements of one cell, by name. */
function functionStatements(source: string, from: number): Helper[] {
  const ts = typescript();
  const sf = parse(source);
  const out: Helper[] = [];
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name && st.body && !st.modifiers?.some((m) => m.kind === ts.SyntaxKind.DeclareKeyword)) {
      out.push({ name: st.name.text, text: st.getText(sf), from });
    } else if (ts.isVariableStatement(st) && st.declarationList.declarations.length === 1) {
      const d = st.declarationList.declarations[0];
      const init = d.initializer;
      if (ts.isIdentifier(d.name) && init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))) {
        out.push({ name: d.name.text, text: st.getText(sf), from });
      }
    }
  }
  return out;
}

const IDENTIFIER = /[A-Za-z_$][\w$]*/g;

/**
 * The helpers `exerciseSource` needs from `otherSources` (other cells, earliest first; later definitions win),
 * transitively, in the order their cells come.
 */
export function helpersFor(exerciseSource: string, otherSources: string[]): Helper[] {
  const pool = new Map<string, Helper>();
  otherSources.forEach((src, i) => {
    let found: Helper[];
    try {
      found = functionStatements(src, i);
    } catch {
      found = []; // a cell TypeScript cannot parse defines nothing usable
    }
    for (const h of found) pool.set(h.name, h);
  });
  const own = topLevelNames(exerciseSource);
  const chosen = new Map<string, Helper>();
  const queue = [...new Set(exerciseSource.match(IDENTIFIER) ?? [])];
  // An index, not queue.shift(): shift moves the whole array, quadratic in a hostile cell's hundreds of thousands of names.
  for (let next = 0; next < queue.length; next++) {
    const name = queue[next];
    if (own.has(name) || chosen.has(name)) continue;
    const h = pool.get(name);
    if (!h) continue;
    chosen.set(name, h);
    for (const n of new Set(h.text.match(IDENTIFIER) ?? [])) if (!chosen.has(n)) queue.push(n);
  }
  return [...chosen.values()].sort((a, b) => a.from - b.from || a.name.localeCompare(b.name));
}

/** The exercise cell with its helpers put before it (what the grader and the self-check evaluate). */
export function withHelpers(exerciseSource: string, helpers: Helper[]): string {
  if (helpers.length === 0) return exerciseSource;
  return `${helpers.map((h) => h.text).join('\n')}\n${exerciseSource}`;
}

/** What to tell a learner whose exercise cell used `name` without defining it (the grader and the self-check). */
export function undefinedNameAdvice(name: string, definedElsewhere: boolean): string {
  return definedElsewhere
    ? `${name} is defined in another cell, but only helper functions (function declarations, const f = (…) => …) come ` +
        `with an exercise cell when it is graded: define ${name} inside the exercise cell`
    : `the exercise cell must define ${name} itself: it is graded with only tf and the helper functions it calls from other cells`;
}
