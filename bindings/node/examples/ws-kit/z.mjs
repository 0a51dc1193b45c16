// The part of Zod's API the ws-kit example's schemas use: string, number,
// boolean, object, array, enum, literal, record, any; min/max/int,
// optional and default; safeParse with issues { path, message }.
// Objects are strict (unknown keys are an issue), as ws-kit makes them.

class Schema {
  constructor(check) {
    this._check = check; // (value, path, issues) => parsed value
    this._optional = false;
    this._default = undefined;
  }

  _parse(v, path, issues) {
    if (v === undefined) {
      if (this._default !== undefined) return typeof this._default === 'function' ? this._default() : this._default;
      if (this._optional) return undefined;
      issues.push({ path, message: 'Required' });
      return undefined;
    }
    return this._check(v, path, issues);
  }

  _derive(check) {
    const s = new Schema(check);
    s._optional = this._optional;
    s._default = this._default;
    return s;
  }

  /** Add a rule: `test(value)` false gives `message`. */
  refine(test, message) {
    const inner = this._check;
    return this._derive((v, p, issues) => {
      const n = issues.length;
      const out = inner(v, p, issues);
      if (issues.length === n && !test(out)) issues.push({ path: p, message });
      return out;
    });
  }

  optional() {
    const s = this._derive(this._check);
    s._optional = true;
    return s;
  }

  default(value) {
    const s = this._derive(this._check);
    s._default = value;
    return s;
  }

  safeParse(value) {
    const issues = [];
    const data = this._parse(value, [], issues);
    return issues.length ? { success: false, error: { issues } } : { success: true, data };
  }

  parse(value) {
    const r = this.safeParse(value);
    if (!r.success) throw new TypeError(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    return r.data;
  }
}

class StringSchema extends Schema {
  min(n) {
    return this.refine((v) => v.length >= n, `String must contain at least ${n} character(s)`);
  }

  max(n) {
    return this.refine((v) => v.length <= n, `String must contain at most ${n} character(s)`);
  }
}

class NumberSchema extends Schema {
  int() {
    return this.refine((v) => Number.isInteger(v), 'Expected integer, received float');
  }

  min(n) {
    return this.refine((v) => v >= n, `Number must be greater than or equal to ${n}`);
  }

  max(n) {
    return this.refine((v) => v <= n, `Number must be less than or equal to ${n}`);
  }

  nonnegative() {
    return this.min(0);
  }
}

// refine/optional/default keep the subclass's methods: derive into the same class.
for (const C of [StringSchema, NumberSchema]) {
  C.prototype._derive = function (check) {
    const s = new C(check);
    s._optional = this._optional;
    s._default = this._default;
    return s;
  };
}

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const expect = (kind) => (v, p, issues) => {
  if (typeOf(v) === kind && !(kind === 'number' && !Number.isFinite(v))) return v;
  issues.push({ path: p, message: `Expected ${kind}, received ${typeOf(v)}` });
  return v;
};

export const z = {
  string: () => new StringSchema(expect('string')),
  number: () => new NumberSchema(expect('number')),
  boolean: () => new Schema(expect('boolean')),
  any: () => new Schema((v) => v),
  literal: (value) =>
    new Schema((v, p, issues) => {
      if (v !== value) issues.push({ path: p, message: `Invalid literal value, expected ${JSON.stringify(value)}` });
      return v;
    }),
  enum: (values) =>
    new Schema((v, p, issues) => {
      if (!values.includes(v)) issues.push({ path: p, message: `Invalid enum value. Expected ${values.map((x) => `'${x}'`).join(' | ')}` });
      return v;
    }),
  array: (item) =>
    new Schema((v, p, issues) => {
      if (!Array.isArray(v)) {
        issues.push({ path: p, message: `Expected array, received ${typeOf(v)}` });
        return v;
      }
      return v.map((x, i) => item._parse(x, [...p, i], issues));
    }),
  record: (value) =>
    new Schema((v, p, issues) => {
      if (typeOf(v) !== 'object') {
        issues.push({ path: p, message: `Expected object, received ${typeOf(v)}` });
        return v;
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value._parse(x, [...p, k], issues)]));
    }),
  object: (shape) => {
    const s = new Schema((v, p, issues) => {
      if (typeOf(v) !== 'object') {
        issues.push({ path: p, message: `Expected object, received ${typeOf(v)}` });
        return v;
      }
      const out = {};
      for (const [k, sub] of Object.entries(shape)) {
        const x = sub._parse(v[k], [...p, k], issues);
        if (x !== undefined) out[k] = x;
      }
      const extra = Object.keys(v).filter((k) => !(k in shape));
      if (extra.length) issues.push({ path: p, message: `Unrecognized key(s) in object: ${extra.map((k) => `'${k}'`).join(', ')}` });
      return out;
    });
    s.shape = shape;
    return s;
  },
};

/** A raw shape (`{ a: z.string() }`) or a z.object, as a z.object. */
export function toObject(shapeOrSchema) {
  if (!shapeOrSchema) return z.object({});
  return shapeOrSchema instanceof Schema ? shapeOrSchema : z.object(shapeOrSchema);
}
