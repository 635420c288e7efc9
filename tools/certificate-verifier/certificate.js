/*
 * Verification of a carbon retirement certificate (docs/certificate.md), format
 * "carbon-retirement-certificate/2": the bank's signed batches with the owner's leaves, and the
 * registry's transaction records ("carbon-registry-record/1") exactly as the registry signed
 * them. The one implementation behind both index.html (inlined by assemble.js) and the command
 * line (verify.js).
 *
 * It trusts nothing but the public keys it is given (one or more of the bank's, one or more of the
 * registry's: after a key rotation a certificate holds signatures of an old and of a new key) and
 * the SM2/SM3 code of sm-crypto 0.5.8 (vendor/). It computes everything else itself: its own strict
 * JSON parser (so that an integer is told from a float and a duplicate key is refused), its own
 * canonical JSON (Python's json.dumps(sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False)), UTF-8 bytes from TextEncoder, and the Merkle arithmetic.
 *
 * Usage: const api = factory(sm2, sm3)      (factory = this module's export)
 *        api.verifyText(certificateText, {bankKeys: [hex, …], registryKeys: [hex, …]}) -> report
 *        ({bankKey: hex, registryKey: hex}, one key each, works too)
 *        report.verdict is "VALID" or "INVALID"; report.checks lists every check made
 *        ({step, code, ok, batch, leaf, message, key}: `key` is the fingerprint of the trusted key
 *        that verified a signature, else null); report.failures the failed ones; report.keys the
 *        trusted keys with their fingerprints (SM3 of the key's 64 bytes); report.batches[i]
 *        .bank_key, .issuance.registry_key and .retirements[k].registry_key name the key that
 *        verified each signature.
 * A malformed trusted key is not a property of the certificate: it throws KeyError naming it.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory;
  else root.CarbonCertificate = factory;
})(typeof self !== 'undefined' ? self : this, function makeCertificateVerifier(sm2, sm3) {
  'use strict';

  var CERTIFICATE_FORMAT = 'carbon-retirement-certificate/2';
  var WITHDRAWN_FORMAT = 'carbon-retirement-certificate/1'; // never verifiable: docs/certificate.md §8
  var BATCH_FORMAT = 'carbon-reduction-batch/1';
  var RECORD_FORMAT = 'carbon-registry-record/1';
  var USER_ID = '1234567812345678'; // GM/T 0003 default user id, as carbon_common.gm
  var GRAMS_PER_UNIT = 1000000; // one unit = 1 t CO2e (ADR 0005 §5)
  var MAX_DEPTH = 32;
  var MAX_PROOF = 64;
  var HEX64 = /^[0-9a-f]{64}$/;
  var SIGNATURE = /^[0-9a-fA-F]{128}$/;
  var RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
  var hasOwn = Object.prototype.hasOwnProperty;
  var utf8 = new TextEncoder();

  function KeyError(message) {
    this.name = 'KeyError';
    this.message = message;
    this.stack = new Error(message).stack;
  }
  KeyError.prototype = Object.create(Error.prototype);
  KeyError.prototype.constructor = KeyError;

  function JsonError(message, offset) {
    this.name = 'JsonError';
    this.message = message + ' (at character ' + offset + ')';
    this.offset = offset;
  }
  JsonError.prototype = Object.create(Error.prototype);
  JsonError.prototype.constructor = JsonError;

  /* A number the documents may not hold, kept as its text so a reason can quote it. */
  function JsonFloat(text) {
    this.text = text;
  }
  function JsonBigInteger(text) {
    this.text = text;
  }

  // ---------------------------------------------------------------------------------------
  // Strict JSON (RFC 8259). Unlike JSON.parse it keeps "1.0" apart from "1" (Python reads the
  // first as a float, which canonical JSON writes back as "1.0"), refuses duplicate keys (which
  // copy of the key would the bank have signed?) and refuses a \u escape that leaves a lone
  // surrogate (no UTF-8 bytes exist for it). Objects have no prototype: "__proto__" is a key.
  function parseJson(text) {
    var i = 0;
    var n = text.length;

    function fail(message) {
      throw new JsonError(i >= n ? 'unexpected end of the text' : message, i);
    }
    function ws() {
      while (i < n) {
        var c = text.charCodeAt(i);
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
        else break;
      }
    }
    function value(depth) {
      if (depth > MAX_DEPTH) fail('nested deeper than ' + MAX_DEPTH);
      ws();
      if (i >= n) fail('unexpected end of the text');
      var c = text[i];
      if (c === '{') return object(depth);
      if (c === '[') return array(depth);
      if (c === '"') return string();
      if (c === '-' || (c >= '0' && c <= '9')) return number();
      if (text.startsWith('true', i)) return (i += 4), true;
      if (text.startsWith('false', i)) return (i += 5), false;
      if (text.startsWith('null', i)) return (i += 4), null;
      fail('unexpected character ' + JSON.stringify(c));
    }
    function object(depth) {
      var out = Object.create(null);
      i++;
      ws();
      if (text[i] === '}') return i++, out;
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key in double quotes');
        var keyAt = i;
        var key = string();
        if (hasOwn.call(out, key)) {
          i = keyAt;
          fail('duplicate key ' + JSON.stringify(key));
        }
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        out[key] = value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return i++, out;
        else fail('expected "," or "}"');
      }
    }
    function array(depth) {
      var out = [];
      i++;
      ws();
      if (text[i] === ']') return i++, out;
      for (;;) {
        out.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return i++, out;
        else fail('expected "," or "]"');
      }
    }
    function string() {
      var out = '';
      var at = i;
      i++;
      for (;;) {
        if (i >= n) fail('unterminated string');
        var c = text.charCodeAt(i);
        if (c === 0x22) {
          i++;
          break;
        }
        if (c < 0x20) fail('raw control character in a string');
        if (c === 0x5c) {
          var e = text[i + 1];
          var simple = {'"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t'};
          if (hasOwn.call(simple, e)) {
            out += simple[e];
            i += 2;
          } else if (e === 'u') {
            var hex = text.substr(i + 2, 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            out += String.fromCharCode(parseInt(hex, 16));
            i += 6;
          } else fail('bad escape');
        } else {
          out += text[i];
          i++;
        }
      }
      if (!wellFormed(out)) throw new JsonError('string holds a lone surrogate (no UTF-8 encoding exists)', at);
      return out;
    }
    function number() {
      var m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
      if (!m) fail('bad number');
      i += m[0].length;
      if (m[2] || m[3]) return new JsonFloat(m[0]);
      var v = Number(m[0]);
      return Number.isSafeInteger(v) ? v : new JsonBigInteger(m[0]);
    }

    var result = value(0);
    ws();
    if (i < n) fail('text after the JSON value');
    return result;
  }

  function wellFormed(s) {
    for (var k = 0; k < s.length; k++) {
      var c = s.charCodeAt(k);
      if (c >= 0xd800 && c <= 0xdbff) {
        var d = s.charCodeAt(k + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
        k++;
      } else if (c >= 0xdc00 && c <= 0xdfff) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Canonical JSON: the text of Python's
  //   json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
  // for documents of strings, integers, arrays and objects, and nothing else. Keys sort by code
  // point (Python's str order; JavaScript's default sort compares UTF-16 units, which differs
  // above U+FFFF). Strings: '"' and '\' escaped with a backslash, \b \f \n \r \t as such, the
  // other characters below U+0020 as \u00xx (lower-case hex), every other character as itself.
  function CanonicalError(path, message) {
    this.name = 'CanonicalError';
    this.path = path;
    this.message = path + ': ' + message;
  }
  CanonicalError.prototype = Object.create(Error.prototype);
  CanonicalError.prototype.constructor = CanonicalError;

  function compareCodePoints(a, b) {
    var i = 0;
    var j = 0;
    while (i < a.length && j < b.length) {
      var x = a.codePointAt(i);
      var y = b.codePointAt(j);
      if (x !== y) return x < y ? -1 : 1;
      i += x > 0xffff ? 2 : 1;
      j += y > 0xffff ? 2 : 1;
    }
    return i < a.length ? 1 : j < b.length ? -1 : 0;
  }

  var SHORT_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'};

  function quote(s, path) {
    if (!wellFormed(s)) throw new CanonicalError(path, 'a lone surrogate has no UTF-8 encoding');
    var out = '"';
    for (var k = 0; k < s.length; k++) {
      var ch = s[k];
      var c = s.charCodeAt(k);
      if (hasOwn.call(SHORT_ESCAPES, ch)) out += SHORT_ESCAPES[ch];
      else if (c < 0x20) out += '\\u' + ('000' + c.toString(16)).slice(-4);
      else out += ch;
    }
    return out + '"';
  }

  function describe(v) {
    if (v === null) return 'null';
    if (v instanceof JsonFloat) return 'the float ' + v.text;
    if (v instanceof JsonBigInteger) return 'the integer ' + v.text + ', beyond 2^53-1';
    if (Array.isArray(v)) return 'an array';
    if (typeof v === 'object') return 'an object';
    if (typeof v === 'string') return 'the string ' + JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
    return typeof v + ' ' + String(v);
  }

  function canonicalJson(v, path) {
    path = path || '$';
    if (typeof v === 'string') return quote(v, path);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new CanonicalError(path, 'only integers up to 2^53-1 are allowed, found ' + v);
      return String(v);
    }
    if (Array.isArray(v)) {
      return '[' + v.map(function (x, k) { return canonicalJson(x, path + '[' + k + ']'); }).join(',') + ']';
    }
    if (v !== null && typeof v === 'object' && !(v instanceof JsonFloat) && !(v instanceof JsonBigInteger)) {
      var keys = Object.keys(v).sort(compareCodePoints);
      return '{' + keys.map(function (key) {
        return quote(key, path) + ':' + canonicalJson(v[key], path + '.' + key);
      }).join(',') + '}';
    }
    throw new CanonicalError(path, 'signed documents hold only strings, integers, arrays and objects; found ' + describe(v));
  }

  function utf8Bytes(s) {
    return Array.from(utf8.encode(s)); // sm-crypto normalises to a plain array anyway
  }

  // ---------------------------------------------------------------------------------------
  // Hashes, Merkle tree and signatures
  function sm3Hex(text) {
    return sm3(utf8Bytes(text));
  }
  function leafHash(leaf) {
    return sm3Hex('leaf:' + canonicalJson(leaf, 'leaf'));
  }
  function nodeHash(left, right) {
    return sm3Hex('node:' + left + right);
  }
  /* Root over the hashes sorted ascending; an odd last node is promoted unchanged. */
  function merkleRoot(hashes) {
    if (!hashes.length) throw new Error('no leaves');
    var level = hashes.slice().sort();
    while (level.length > 1) {
      var next = [];
      for (var k = 0; k < level.length; k += 2) {
        next.push(k + 1 < level.length ? nodeHash(level[k], level[k + 1]) : level[k]);
      }
      level = next;
    }
    return level[0];
  }
  /* The inclusion proof of `hash` in the tree of `hashes` (what the bank computes). */
  function merkleProof(hashes, hash) {
    var level = hashes.slice().sort();
    var at = level.indexOf(hash);
    if (at < 0) throw new Error('not a leaf of this tree');
    var proof = [];
    while (level.length > 1) {
      var sibling = at % 2 ? at - 1 : at + 1;
      if (sibling < level.length) proof.push({side: at % 2 ? 'left' : 'right', hash: level[sibling]});
      var next = [];
      for (var k = 0; k < level.length; k += 2) {
        next.push(k + 1 < level.length ? nodeHash(level[k], level[k + 1]) : level[k]);
      }
      level = next;
      at = Math.floor(at / 2);
    }
    return proof;
  }
  function rootFromProof(hash, proof) {
    return proof.reduce(function (current, step) {
      return step.side === 'left' ? nodeHash(step.hash, current) : nodeHash(current, step.hash);
    }, hash);
  }

  /* A trusted key: 128 hex X||Y (a leading 04 is accepted and removed), on the SM2 curve. */
  function normalizeKey(text, name) {
    var key = String(text || '').replace(/\s+/g, '').toLowerCase();
    if (key.length === 130 && key.slice(0, 2) === '04') key = key.slice(2);
    if (!/^[0-9a-f]{128}$/.test(key)) {
      throw new KeyError(name + ' must be 128 hex characters X||Y (optionally after 04), got ' + key.length + ' characters');
    }
    if (!sm2.verifyPublicKey('04' + key)) throw new KeyError(name + ' is not a point of the SM2 curve');
    return key;
  }

  /* The trusted keys of one signer, normalized, in the order given, a repeated key once:
   * [{public_key, fingerprint}]. `given` is one key or a list; a bad one is named by its place
   * in the list ("the bank key #2 (801ac7ba748c…)") unless it is the only one. */
  function normalizeKeys(given, name) {
    var list = Array.isArray(given) ? given : [given];
    if (!list.length) throw new KeyError(name + ' is missing: give at least one');
    var out = [];
    list.forEach(function (text, k) {
      var label = name;
      if (list.length > 1) {
        var shown = String(text === undefined || text === null ? '' : text).replace(/\s+/g, '');
        label += ' #' + (k + 1) + (shown ? ' (' + (shown.length > 12 ? shown.slice(0, 12) + '…' : shown) + ')' : '');
      }
      var key = normalizeKey(text, label);
      if (!out.some(function (t) { return t.public_key === key; })) out.push({public_key: key, fingerprint: keyFingerprint(key)});
    });
    return out;
  }

  /* The keys typed into one field of the page (or one URL parameter): separated by commas, line
   * breaks or other whitespace. Whitespace inside one key was always allowed (a key pasted across
   * two lines), so text without a comma whose parts are not each a key but that together make
   * one is that one key. */
  function splitKeys(text) {
    var s = String(text === undefined || text === null ? '' : text);
    var parts = s.split(/[\s,]+/).filter(Boolean);
    var looksLikeKey = function (t) { return /^(04)?[0-9a-fA-F]{128}$/.test(t); };
    if (parts.length > 1 && s.indexOf(',') < 0 && !parts.every(looksLikeKey) && looksLikeKey(parts.join(''))) {
      return [parts.join('')];
    }
    return parts;
  }

  /* The first trusted key that verifies the signature, or null. */
  function verifiedBy(trusted, text, signatureHex) {
    for (var k = 0; k < trusted.length; k++) {
      if (sm2Verify(trusted[k].public_key, text, signatureHex)) return trusted[k];
    }
    return null;
  }

  /* SM3 of the key's 64 bytes X||Y (not of its hex text), 64 lower-case hex characters. */
  function keyFingerprint(key) {
    var bytes = [];
    for (var k = 0; k < key.length; k += 2) bytes.push(parseInt(key.substr(k, 2), 16));
    return sm3(bytes);
  }

  function sm2Verify(publicKey, text, signatureHex) {
    if (typeof signatureHex !== 'string' || !SIGNATURE.test(signatureHex)) return false;
    try {
      return sm2.doVerifySignature(utf8Bytes(text), signatureHex.toLowerCase(), '04' + publicKey, {hash: true, userId: USER_ID}) === true;
    } catch (e) {
      return false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Document shapes. Every object of the format has exactly these members (a member the
  // verifier does not know could be shown to a reader as if it had been verified); a member
  // listed under `optional` may be absent. A checker returns null (fits), a reason, or a list of
  // problems of a nested document, each with its full path.
  var T = {
    str: function (v) { return typeof v === 'string' ? null : 'must be a string, found ' + describe(v); },
    text: function (v) { return typeof v === 'string' && v.length ? null : 'must be a non-empty string, found ' + describe(v); },
    hex64: function (v) { return typeof v === 'string' && HEX64.test(v) ? null : 'must be 64 lower-case hex characters, found ' + describe(v); },
    sig: function (v) { return typeof v === 'string' && SIGNATURE.test(v) ? null : 'must be 128 hex characters r||s, found ' + describe(v); },
    time: function (v) { return typeof v === 'string' && RFC3339.test(v) ? null : 'must be an RFC 3339 date-time, found ' + describe(v); },
    array: function (v) { return Array.isArray(v) ? null : 'must be an array, found ' + describe(v); },
    object: function (v) { return isObject(v) ? null : 'must be an object, found ' + describe(v); },
  };
  function int(min) {
    return function (v) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return 'must be an integer, found ' + describe(v);
      return v >= min ? null : 'must be at least ' + min + ', found ' + v;
    };
  }
  /* start/end of a record: the registry writes null for an issuance of 0 units (no serials). */
  function serialNumber(v) {
    if (v === null) return 'must be an integer of at least 1, found null (an issuance of 0 units has no serials, and a certificate lists only batches with retired units)';
    return int(1)(v);
  }
  function oneOf(value) {
    return function (v) { return v === value ? null : 'must be ' + JSON.stringify(value) + ', found ' + describe(v); };
  }
  function objectOf(shape, optional) {
    return function (v, path) { return shapeProblems(v, shape, path, optional); };
  }
  function arrayOf(shape, min) {
    return function (v, path) {
      if (!Array.isArray(v)) return 'must be an array, found ' + describe(v);
      if (v.length < min) return 'must hold at least ' + min + ' element(s), found ' + v.length;
      var problems = [];
      v.forEach(function (x, k) { problems = problems.concat(shapeProblems(x, shape, path + '[' + k + ']')); });
      return problems;
    };
  }
  function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonFloat) && !(v instanceof JsonBigInteger);
  }
  function extend(base, more) {
    var out = {};
    Object.keys(base).forEach(function (k) { out[k] = base[k]; });
    Object.keys(more).forEach(function (k) { out[k] = more[k]; });
    return out;
  }

  // A serial block of the registry (inside a record's `produced`).
  var BLOCK = {
    block_id: T.text, batch_id: T.text, methodology_id: T.text, methodology_version: T.text, vintage: int(0),
    start: int(1), end: int(1), units: int(1), serial: T.text, holder: T.str, status: T.str,
  };
  // Members of every carbon-registry-record/1 (docs/registry-api.md §6), as the registry signs them.
  var RECORD = {
    format: T.str, op_id: T.text, type: T.text, batch_id: T.text, methodology_id: T.text, methodology_version: T.text,
    vintage: int(0), units: int(1), serial: T.text, start: serialNumber, end: serialNumber, from_holder: T.str,
    to_holder: T.str, beneficiary: T.str, reason: T.str, at: T.str, consumed: T.str, produced: arrayOf(BLOCK, 1),
  };
  var SHAPES = {
    certificate: {format: T.str, owner_pid: T.text, issued_at: T.time, total_grams: int(0), batches: T.array},
    entry: {batch: T.object, bank_signature: T.sig, issuance: T.object, retirements: T.array, leaves: T.array},
    batch: {
      format: T.str, batch_id: T.text, methodology_id: T.text, methodology_version: T.text, vintage: int(0),
      record_count: int(1), quantity_grams: int(0), carried_in_grams: int(0), carried_from: T.str,
      merkle_root: T.hex64, consent_root: T.hex64, period: T.str, created_at: T.str,
    },
    batchOptional: {attempt: int(2)}, // a batch re-formed after a rejection (ADR 0005 R2)
    signed: {record: T.object, registry_signature: T.sig},
    issue: extend(RECORD, {
      type: oneOf('issue'), batch_digest: T.hex64, merkle_root: T.hex64, consent_root: T.hex64, quantity_grams: int(0),
      carried_in_grams: int(0), carried_from: T.str, carried_out_grams: int(0), group_position: int(1),
    }),
    retire: extend(RECORD, {
      type: oneOf('retire'),
      request: objectOf({batch_id: T.text, units: int(1), beneficiary: T.str, reason: T.str}),
    }),
    leafEntry: {leaf: T.object, proof: T.array},
    leaf: {
      reduction_id: T.text, grams: int(1), owner_pid: T.text, methodology_id: T.text, methodology_version: T.text,
      factor_set_id: T.str, factor_set_version: T.str, vintage: int(0), occurred_at: T.str,
    },
    step: {side: function (v) { return v === 'left' || v === 'right' ? null : 'must be "left" or "right", found ' + describe(v); }, hash: T.hex64},
  };

  /* Problems of `value` against `shape` (+ `optional` members), each "path: reason"; [] when it fits. */
  function shapeProblems(value, shape, path, optional) {
    if (!isObject(value)) return [path + ' must be an object, found ' + describe(value)];
    optional = optional || {};
    var problems = [];
    function check(key, checker) {
      var why = checker(value[key], path + '.' + key);
      if (Array.isArray(why)) problems = problems.concat(why);
      else if (why) problems.push(path + '.' + key + ' ' + why);
    }
    Object.keys(shape).forEach(function (key) {
      if (!hasOwn.call(value, key)) problems.push(path + '.' + key + ' is missing');
      else check(key, shape[key]);
    });
    Object.keys(optional).forEach(function (key) {
      if (hasOwn.call(value, key)) check(key, optional[key]);
    });
    Object.keys(value).forEach(function (key) {
      if (!hasOwn.call(shape, key) && !hasOwn.call(optional, key)) problems.push(path + ' has the unknown member ' + JSON.stringify(key));
    });
    return problems;
  }

  // ---------------------------------------------------------------------------------------
  // Verification
  function Report() {
    this.checks = [];
  }
  Report.prototype.add = function (step, code, ok, where, message, key) {
    this.checks.push({
      step: step, code: code, ok: !!ok,
      batch: where && where.batch !== undefined ? where.batch : null,
      leaf: where && where.leaf !== undefined ? where.leaf : null,
      message: message,
      key: key || null,
    });
    return !!ok;
  };

  function short(hex) {
    return typeof hex === 'string' && hex.length > 16 ? hex.slice(0, 12) + '…' : String(hex);
  }

  function finish(report, summary, keys) {
    var failures = report.checks.filter(function (c) { return !c.ok; });
    return {
      verdict: failures.length ? 'INVALID' : 'VALID',
      // bank/registry: the first key of each, as before there could be several (existing readers)
      keys: {
        bank: keys.bank[0],
        registry: keys.registry[0],
        bank_keys: keys.bank,
        registry_keys: keys.registry,
      },
      format: summary.format === undefined ? null : summary.format,
      owner_pid: summary.owner_pid === undefined ? null : summary.owner_pid,
      issued_at: summary.issued_at === undefined ? null : summary.issued_at,
      total_grams: summary.total_grams === undefined ? null : summary.total_grams,
      digest: summary.digest === undefined ? null : summary.digest,
      batches: summary.batches || [],
      checks: report.checks,
      failures: failures,
    };
  }

  /* {bank: [{public_key, fingerprint}], registry: […]} of {bankKeys, registryKeys} (lists) or
   * {bankKey, registryKey} (one key, or a list, each). */
  function trustedKeys(keys) {
    keys = keys || {};
    return {
      bank: normalizeKeys(keys.bankKeys !== undefined ? keys.bankKeys : keys.bankKey, 'the bank key'),
      registry: normalizeKeys(keys.registryKeys !== undefined ? keys.registryKeys : keys.registryKey, 'the registry key'),
    };
  }
  function asKeys(trusted) {
    var hex = function (t) { return t.public_key; };
    return {bankKeys: trusted.bank.map(hex), registryKeys: trusted.registry.map(hex)};
  }

  function verifyText(text, keys) {
    var trusted = trustedKeys(keys);
    var doc;
    try {
      doc = parseJson(String(text));
    } catch (e) {
      if (!(e instanceof JsonError)) throw e;
      var report = new Report();
      report.add(1, 'json', false, null, 'the certificate is not strict JSON: ' + e.message);
      return finish(report, {}, trusted);
    }
    return verifyDocument(doc, asKeys(trusted));
  }

  /* `doc` as returned by parseJson (JSON.parse output works too but cannot tell 1.0 from 1). */
  function verifyDocument(doc, keys) {
    var trusted = trustedKeys(keys);
    var report = new Report();
    var summary = {};

    // (1) a known format, and the shape of the certificate itself
    if (!isObject(doc)) {
      report.add(1, 'structure', false, null, 'the certificate must be a JSON object, found ' + describe(doc));
      return finish(report, summary, trusted);
    }
    if (doc.format !== CERTIFICATE_FORMAT) {
      report.add(1, 'format', false, null, doc.format === WITHDRAWN_FORMAT
        ? WITHDRAWN_FORMAT + ' is withdrawn: it described registry records the registry never signed, so no certificate of it can verify; ask for ' + CERTIFICATE_FORMAT
        : 'unknown certificate format ' + describe(doc.format) + ' (this verifier knows ' + CERTIFICATE_FORMAT + ')');
      return finish(report, summary, trusted);
    }
    summary.format = doc.format;
    var top = shapeProblems(doc, SHAPES.certificate, '$');
    if (top.length) {
      top.forEach(function (p) { report.add(1, 'structure', false, null, p); });
      return finish(report, summary, trusted);
    }
    summary.owner_pid = doc.owner_pid;
    summary.issued_at = doc.issued_at;
    summary.total_grams = doc.total_grams;
    try {
      summary.digest = sm3Hex(canonicalJson(doc, '$')); // what the certificate's PDF prints
    } catch (e) {
      if (!(e instanceof CanonicalError)) throw e; // a float or a null: reported by the shape checks
    }
    if (!report.add(1, 'structure', doc.batches.length > 0, null,
      doc.batches.length ? 'certificate of format ' + CERTIFICATE_FORMAT + ' with ' + doc.batches.length + ' batch(es)' : 'the certificate lists no batch')) {
      return finish(report, summary, trusted);
    }

    var owner = doc.owner_pid;
    var sum = 0;
    var sumComplete = true;
    var seenReductions = Object.create(null);
    var seenBatches = Object.create(null);
    summary.batches = doc.batches.map(function (entry, b) {
      var r = verifyBatch(entry, b, owner, trusted, report);
      if (r.gramsComplete) sum += r.grams;
      else sumComplete = false;
      r.reductionIds.forEach(function (id) {
        if (seenReductions[id] !== undefined) {
          report.add(7, 'duplicate_reduction', false, {batch: r.summary.batch_id, leaf: id},
            'reduction ' + id + ' appears twice (first in batch ' + seenReductions[id] + ')');
        } else seenReductions[id] = r.summary.batch_id;
      });
      if (r.summary.batch_id !== null) {
        if (seenBatches[r.summary.batch_id]) {
          report.add(7, 'duplicate_batch', false, {batch: r.summary.batch_id}, 'batch ' + r.summary.batch_id + ' appears twice');
        }
        seenBatches[r.summary.batch_id] = true;
      }
      return r.summary;
    });

    // (6) the total is the sum of the leaves' grams
    if (!sumComplete) {
      report.add(6, 'total_grams', false, null, 'total_grams cannot be checked: some leaf has no valid grams (see above)');
    } else if (!Number.isSafeInteger(sum)) {
      report.add(6, 'total_grams', false, null, 'the leaves add up to more than 2^53-1 grams, which cannot be checked exactly');
    } else {
      report.add(6, 'total_grams', sum === doc.total_grams, null, sum === doc.total_grams
        ? 'total_grams ' + doc.total_grams + ' is the sum of the leaves\' grams'
        : 'total_grams says ' + doc.total_grams + ' but the leaves add up to ' + sum);
    }
    // (7) no reduction twice
    if (!report.checks.some(function (c) { return c.step === 7; })) {
      report.add(7, 'duplicate_reduction', true, null, 'no reduction and no batch appears twice');
    }
    return finish(report, summary, trusted);
  }

  /* The message of a failed signature check: with one trusted key exactly as it always was. */
  function notVerified(trusted, kind) {
    return trusted.length === 1 ? 'with the trusted ' + kind + ' key' : 'with any of the ' + trusted.length + ' trusted ' + kind + ' keys';
  }
  function fingerprintOf(key) {
    return key ? key.fingerprint : null;
  }

  function verifyBatch(entry, b, owner, trusted, report) {
    var label = '#' + (b + 1);
    var out = {grams: 0, gramsComplete: true, reductionIds: [], summary: {index: b, batch_id: null, bank_key: null, leaves: [], retirements: []}};
    var where = {batch: label};

    // (1) shape of this entry and of its batch
    var problems = shapeProblems(entry, SHAPES.entry, 'batches[' + b + ']');
    if (problems.length) {
      problems.forEach(function (p) { report.add(1, 'structure', false, where, p); });
      out.gramsComplete = false;
      return out;
    }
    var batch = entry.batch;
    if (typeof batch.batch_id === 'string' && batch.batch_id) label = batch.batch_id;
    where = {batch: label};
    out.summary.batch_id = label;
    if (batch.format !== BATCH_FORMAT) {
      report.add(1, 'batch_format', false, where, 'unknown batch format ' + describe(batch.format) + ' (this verifier knows ' + BATCH_FORMAT + ')');
      out.gramsComplete = false;
      return out;
    }
    problems = shapeProblems(batch, SHAPES.batch, 'batches[' + b + '].batch', SHAPES.batchOptional);
    if (problems.length) {
      problems.forEach(function (p) { report.add(1, 'structure', false, where, p); });
      out.gramsComplete = false;
      return out;
    }
    report.add(1, 'structure', true, where, 'batch of format ' + BATCH_FORMAT);
    ['methodology_id', 'methodology_version', 'vintage', 'merkle_root', 'record_count', 'quantity_grams', 'carried_in_grams', 'period'].forEach(function (k) {
      out.summary[k] = batch[k];
    });
    out.summary.attempt = hasOwn.call(batch, 'attempt') ? batch.attempt : 1;
    var batchText = canonicalJson(batch, 'batch');

    // (2) the bank's signature over canonical_json(batch)
    var signer = verifiedBy(trusted.bank, batchText, entry.bank_signature);
    out.summary.bank_key = fingerprintOf(signer);
    report.add(2, 'bank_signature', signer !== null, where, signer
      ? 'the bank\'s signature over the batch verifies with the trusted bank key of fingerprint ' + signer.fingerprint
      : 'the bank\'s signature over canonical_json(batch) does not verify ' + notVerified(trusted.bank, 'bank') +
        ' (another key signed it, or the batch was changed)', fingerprintOf(signer));

    // (3) every leaf: this owner, this batch's methodology and vintage, included under merkle_root
    if (!report.add(3, 'leaves', entry.leaves.length > 0, where,
      entry.leaves.length ? entry.leaves.length + ' leaf(s) of the owner in this batch' : 'the batch lists no leaf')) {
      out.gramsComplete = false;
    }
    entry.leaves.forEach(function (le, k) {
      var path = 'batches[' + b + '].leaves[' + k + ']';
      var lp = shapeProblems(le, SHAPES.leafEntry, path);
      if (!lp.length) lp = shapeProblems(le.leaf, SHAPES.leaf, path + '.leaf');
      if (!lp.length && le.proof.length > MAX_PROOF) lp = [path + '.proof has more than ' + MAX_PROOF + ' steps'];
      if (!lp.length) {
        le.proof.forEach(function (st, s) { lp = lp.concat(shapeProblems(st, SHAPES.step, path + '.proof[' + s + ']')); });
      }
      var leafWhere = {batch: label, leaf: isObject(le) && isObject(le.leaf) && typeof le.leaf.reduction_id === 'string' ? le.leaf.reduction_id : '#' + (k + 1)};
      if (lp.length) {
        lp.forEach(function (p) { report.add(1, 'structure', false, leafWhere, p); });
        out.gramsComplete = false;
        return;
      }
      var leaf = le.leaf;
      out.grams += leaf.grams;
      out.reductionIds.push(leaf.reduction_id);
      var ok = report.add(3, 'leaf_owner', leaf.owner_pid === owner, leafWhere, leaf.owner_pid === owner
        ? 'leaf of the certificate\'s owner'
        : 'leaf of owner ' + leaf.owner_pid + ', not of the certificate\'s owner ' + owner);
      var sameMethod = leaf.methodology_id === batch.methodology_id && leaf.methodology_version === batch.methodology_version;
      ok = report.add(3, 'leaf_methodology', sameMethod, leafWhere, sameMethod
        ? 'methodology ' + leaf.methodology_id + ' v' + leaf.methodology_version + ' as the batch'
        : 'methodology ' + leaf.methodology_id + ' v' + leaf.methodology_version + ', the batch is ' + batch.methodology_id + ' v' + batch.methodology_version) && ok;
      ok = report.add(3, 'leaf_vintage', leaf.vintage === batch.vintage, leafWhere, leaf.vintage === batch.vintage
        ? 'vintage ' + leaf.vintage + ' as the batch'
        : 'vintage ' + leaf.vintage + ', the batch is ' + batch.vintage) && ok;
      var hash = leafHash(leaf);
      var root = rootFromProof(hash, le.proof);
      ok = report.add(3, 'merkle_proof', root === batch.merkle_root, leafWhere, root === batch.merkle_root
        ? 'leaf hash ' + short(hash) + ' with its ' + le.proof.length + '-step proof reproduces the batch\'s merkle_root'
        : 'leaf hash ' + short(hash) + ' with its proof gives root ' + short(root) + ', not the batch\'s merkle_root ' + short(batch.merkle_root) +
          ' (a field of the leaf or a proof hash was changed, or the leaf is not in this batch)') && ok;
      out.summary.leaves.push({reduction_id: leaf.reduction_id, grams: leaf.grams, occurred_at: leaf.occurred_at, hash: hash, ok: ok});
    });

    // (4) the registry's issuance record: of this batch, as the bank signed it, in whole tonnes
    var issuance = null;
    var ipath = 'batches[' + b + '].issuance';
    problems = shapeProblems(entry.issuance, SHAPES.signed, ipath);
    var known = !problems.length && knownRecordFormat(entry.issuance.record, ipath + '.record', where, report);
    if (known) problems = shapeProblems(entry.issuance.record, SHAPES.issue, ipath + '.record');
    if (problems.length) {
      problems.forEach(function (p) { report.add(1, 'structure', false, where, p); });
    } else if (known) {
      issuance = entry.issuance.record;
      var issuer = verifiedBy(trusted.registry, canonicalJson(issuance, 'issuance.record'), entry.issuance.registry_signature);
      report.add(4, 'issuance_signature', issuer !== null, where, issuer
        ? 'the registry\'s signature over the issuance record verifies with the trusted registry key of fingerprint ' + issuer.fingerprint
        : 'the registry\'s signature over canonical_json(issuance.record) does not verify ' + notVerified(trusted.registry, 'registry'),
      fingerprintOf(issuer));
      var digest = sm3Hex(batchText);
      var names = [];
      if (issuance.batch_id !== batch.batch_id) names.push('batch_id ' + issuance.batch_id);
      if (issuance.op_id !== 'issue:' + batch.batch_id) names.push('op_id ' + issuance.op_id);
      if (issuance.batch_digest !== digest) names.push('batch_digest ' + short(issuance.batch_digest) + ' (SM3 of this batch is ' + short(digest) + ')');
      report.add(4, 'issuance_batch', !names.length, where, !names.length
        ? 'the issuance is of this batch: its batch_digest is SM3 of the batch the bank signed'
        : 'the issuance is not of this batch: ' + names.join('; '));
      var differ = ['methodology_id', 'methodology_version', 'vintage', 'merkle_root', 'consent_root', 'quantity_grams', 'carried_in_grams', 'carried_from']
        .filter(function (k) { return issuance[k] !== batch[k]; });
      report.add(4, 'issuance_match', !differ.length, where, !differ.length
        ? 'methodology, vintage, merkle_root, consent_root, quantity_grams and the carried remainder are the batch\'s'
        : 'the issuance differs from the batch in ' + differ.map(function (k) {
          return k + ' (' + describe(issuance[k]) + ', the batch says ' + describe(batch[k]) + ')';
        }).join('; '));
      var span = issuance.end - issuance.start + 1;
      var ranged = issuance.start <= issuance.end && issuance.units === span;
      report.add(4, 'issuance_range', ranged, where, ranged
        ? 'serials ' + issuance.start + '–' + issuance.end + ' are its ' + issuance.units + ' unit(s)'
        : 'serials ' + issuance.start + '–' + issuance.end + ' are not ' + issuance.units + ' unit(s)');
      var pooled = batch.carried_in_grams + batch.quantity_grams;
      var units = Math.floor(pooled / GRAMS_PER_UNIT);
      var rest = pooled - units * GRAMS_PER_UNIT;
      var whole = issuance.units === units && issuance.carried_out_grams === rest;
      report.add(4, 'issuance_units', whole, where, whole
        ? issuance.units + ' whole tonne(s) of ' + pooled + ' g, ' + rest + ' g carried out'
        : 'carried_in_grams + quantity_grams = ' + pooled + ' g makes ' + units + ' unit(s) and ' + rest + ' g carried out, the issuance says ' +
          issuance.units + ' unit(s) and ' + issuance.carried_out_grams + ' g');
      out.summary.issuance = pick(issuance, ['op_id', 'serial', 'start', 'end', 'units', 'to_holder', 'at', 'carried_out_grams', 'group_position']);
      out.summary.issuance.registry_key = fingerprintOf(issuer);
    }

    // (5) the registry's retirement records, of this batch, inside the issued range
    if (!entry.retirements.length) report.add(5, 'no_retirement', false, where, 'the batch lists no retirement');
    var ranges = [];
    entry.retirements.forEach(function (ret, k) {
      var path = 'batches[' + b + '].retirements[' + k + ']';
      var rp = shapeProblems(ret, SHAPES.signed, path);
      if (!rp.length && !knownRecordFormat(ret.record, path + '.record', where, report)) return;
      if (!rp.length) rp = shapeProblems(ret.record, SHAPES.retire, path + '.record');
      if (rp.length) {
        rp.forEach(function (p) { report.add(1, 'structure', false, where, p); });
        return;
      }
      var rec = ret.record;
      var name = 'retirement ' + (k + 1) + ' (' + rec.start + '–' + rec.end + ')';
      var retirer = verifiedBy(trusted.registry, canonicalJson(rec, 'retirement.record'), ret.registry_signature);
      report.add(5, 'retirement_signature', retirer !== null, where, retirer
        ? name + ': the registry\'s signature verifies with the trusted registry key of fingerprint ' + retirer.fingerprint
        : name + ': the registry\'s signature over canonical_json(record) does not verify ' + notVerified(trusted.registry, 'registry'),
      fingerprintOf(retirer));
      var other = ['batch_id', 'methodology_id', 'methodology_version', 'vintage'].filter(function (key) { return rec[key] !== batch[key]; });
      report.add(5, 'retirement_batch', !other.length, where, !other.length
        ? name + ': of this batch'
        : name + ': not of this batch: ' + other.map(function (key) { return key + ' ' + describe(rec[key]) + ', the batch says ' + describe(batch[key]); }).join('; '));
      var rspan = rec.end - rec.start + 1;
      var rranged = rec.start <= rec.end && rec.units === rspan;
      report.add(5, 'retirement_units', rranged, where, rranged
        ? name + ': ' + rec.units + ' unit(s)'
        : name + ': serials ' + rec.start + '–' + rec.end + ' are not ' + rec.units + ' unit(s)');
      if (issuance) {
        var inside = issuance.start <= rec.start && rec.start <= rec.end && rec.end <= issuance.end;
        report.add(5, 'retirement_range', inside, where, inside
          ? name + ': inside the issued serials ' + issuance.start + '–' + issuance.end
          : name + ': serials ' + rec.start + '–' + rec.end + ' are not inside the issued ' + issuance.start + '–' + issuance.end);
      }
      ranges.push({start: rec.start, end: rec.end, name: name});
      var listed = pick(rec, ['op_id', 'serial', 'start', 'end', 'units', 'from_holder', 'beneficiary', 'reason', 'at']);
      listed.registry_key = fingerprintOf(retirer);
      out.summary.retirements.push(listed);
    });
    ranges.sort(function (x, y) { return x.start - y.start; });
    for (var k = 1; k < ranges.length; k++) {
      if (ranges[k].start <= ranges[k - 1].end) {
        report.add(5, 'retirement_overlap', false, where, ranges[k - 1].name + ' and ' + ranges[k].name + ' retire the same serials');
      }
    }
    return out;
  }

  /* False (and one `record_format` failure) for a registry record of a format this verifier does
   * not know; a record without `format` is left to the shape check, which reports it missing. */
  function knownRecordFormat(record, path, where, report) {
    if (isObject(record) && hasOwn.call(record, 'format') && record.format !== RECORD_FORMAT) {
      report.add(1, 'record_format', false, where, path + ': unknown record format ' + describe(record.format) + ' (this verifier knows ' + RECORD_FORMAT + ')');
      return false;
    }
    return true;
  }

  function pick(obj, keys) {
    var out = {};
    keys.forEach(function (k) { out[k] = obj[k]; });
    return out;
  }

  return {
    CERTIFICATE_FORMAT: CERTIFICATE_FORMAT,
    BATCH_FORMAT: BATCH_FORMAT,
    RECORD_FORMAT: RECORD_FORMAT,
    USER_ID: USER_ID,
    KeyError: KeyError,
    JsonError: JsonError,
    CanonicalError: CanonicalError,
    parseJson: parseJson,
    canonicalJson: canonicalJson,
    sm3Hex: sm3Hex,
    leafHash: leafHash,
    nodeHash: nodeHash,
    merkleRoot: merkleRoot,
    merkleProof: merkleProof,
    rootFromProof: rootFromProof,
    normalizeKey: normalizeKey,
    normalizeKeys: normalizeKeys,
    splitKeys: splitKeys,
    keyFingerprint: function (publicKey) {
      return keyFingerprint(normalizeKey(publicKey, 'the key'));
    },
    sm2Verify: function (publicKey, text, signatureHex) {
      return sm2Verify(normalizeKey(publicKey, 'the key'), text, signatureHex);
    },
    verifyText: verifyText,
    verifyDocument: verifyDocument,
  };
});
