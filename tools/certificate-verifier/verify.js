#!/usr/bin/env node
/*
 * Verify a carbon retirement certificate (docs/certificate.md) from the command line.
 *
 *   node verify.js --bank-key HEX --registry-key HEX certificate.json
 *   node verify.js --bank-key HEX --registry-key HEX --json certificate.json   (the full report)
 *   node verify.js ... -            (the certificate on standard input)
 *   node verify.js --bank-key OLD --bank-key NEW --registry-key HEX ...   (after a key rotation:
 *                                   each option may be given several times; a signature passes if
 *                                   any of the trusted keys of its signer verifies it)
 *
 * Exit status: 0 VALID, 1 INVALID (each failed check is printed with its reason),
 * 2 usage error (missing argument, unreadable file, a trusted key that is not an SM2 key).
 * Same code as index.html: certificate.js with sm-crypto 0.5.8 from vendor/. No network.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const VENDOR = path.join(__dirname, 'vendor', 'sm-crypto-0.5.8');
const verifier = require('./certificate.js')(require(path.join(VENDOR, 'sm2.js')), require(path.join(VENDOR, 'sm3.js')));

const USAGE = 'usage: node verify.js --bank-key HEX [--bank-key HEX …] --registry-key HEX [--registry-key HEX …] [--json] CERTIFICATE.json|-';

function usage(message) {
  process.stderr.write((message ? message + '\n' : '') + USAGE + '\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = {json: false, file: null, bankKeys: [], registryKeys: []};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : null;
    const next = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) usage(name + ' needs a value');
      return argv[++i];
    };
    if (name === '--bank-key') args.bankKeys.push(next());
    else if (name === '--registry-key') args.registryKeys.push(next());
    else if (name === '--json') args.json = true;
    else if (name === '-h' || name === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (a.startsWith('--')) usage('unknown option ' + a);
    else if (args.file === null) args.file = a;
    else usage('one certificate at a time');
  }
  if (!args.bankKeys.length) usage('--bank-key is required');
  if (!args.registryKeys.length) usage('--registry-key is required');
  if (!args.file) usage('the certificate file is required');
  return args;
}

function readText(file) {
  let bytes;
  try {
    bytes = fs.readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    usage('cannot read ' + file + ': ' + e.message);
  }
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(bytes);
  } catch (e) {
    return null; // not UTF-8: reported as an INVALID certificate below
  }
}

function where(check) {
  const parts = [];
  if (check.batch !== null) parts.push('batch ' + check.batch);
  if (check.leaf !== null) parts.push('leaf ' + check.leaf);
  return parts.length ? parts.join(', ') + ': ' : '';
}

function printReport(report) {
  const out = [];
  // With one trusted key per signer the key of every signature is that key: named only with several.
  const severalBank = report.keys.bank_keys.length > 1;
  const severalRegistry = report.keys.registry_keys.length > 1;
  if (report.verdict === 'VALID') {
    const units = report.batches.reduce((n, b) => n + b.retirements.reduce((m, r) => m + r.units, 0), 0);
    const leaves = report.batches.reduce((n, b) => n + b.leaves.length, 0);
    out.push('VALID: ' + report.format + ', owner ' + report.owner_pid + ', issued ' + report.issued_at);
    out.push('  certificate digest (SM3 of its canonical JSON): ' + report.digest);
    out.push('  ' + report.total_grams + ' g in ' + leaves + ' reduction(s) across ' + report.batches.length +
      ' batch(es); ' + units + ' unit(s) retired');
    for (const b of report.batches) {
      out.push('  batch ' + b.batch_id + (b.attempt > 1 ? ' (attempt ' + b.attempt + ')' : '') + ' (' + b.methodology_id + ' v' +
        b.methodology_version + ', vintage ' + b.vintage + '): ' + b.leaves.length + ' leaf(s), ' +
        b.leaves.reduce((n, l) => n + l.grams, 0) + ' g; issued ' + b.issuance.units + ' unit(s) ' + b.issuance.serial);
      if (severalBank) out.push('    bank key ' + b.bank_key + ' signed the batch');
      if (severalRegistry) out.push('    registry key ' + b.issuance.registry_key + ' signed the issuance record');
      for (const r of b.retirements) {
        out.push('    retired ' + r.units + ' unit(s) ' + r.serial + ' for ' + JSON.stringify(r.beneficiary) + ' (' +
          JSON.stringify(r.reason) + ') at ' + r.at + ', record ' + r.op_id + (severalRegistry ? ', registry key ' + r.registry_key : ''));
      }
    }
    out.push('  ' + report.checks.length + ' checks passed');
  } else {
    out.push('INVALID: ' + report.failures.length + ' check(s) failed');
    for (const f of report.failures) out.push('  [step ' + f.step + ' ' + f.code + '] ' + where(f) + f.message);
  }
  // what a reader compares with the fingerprints printed on the certificate's PDF
  for (const k of report.keys.bank_keys) out.push('  trusted bank key fingerprint (SM3):     ' + k.fingerprint);
  for (const k of report.keys.registry_keys) out.push('  trusted registry key fingerprint (SM3): ' + k.fingerprint);
  process.stdout.write(out.join('\n') + '\n');
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  let keys;
  try {
    const hex = (trusted) => trusted.map((k) => k.public_key);
    keys = {
      bankKeys: hex(verifier.normalizeKeys(args.bankKeys, '--bank-key')),
      registryKeys: hex(verifier.normalizeKeys(args.registryKeys, '--registry-key')),
    };
  } catch (e) {
    if (e instanceof verifier.KeyError) usage(e.message);
    throw e;
  }
  const text = readText(args.file);
  const notUtf8 = {step: 1, code: 'json', ok: false, batch: null, leaf: null, message: 'the certificate is not UTF-8 text', key: null};
  const report = verifier.verifyText(text === null ? '' : text, keys);
  if (text === null) Object.assign(report, {checks: [notUtf8], failures: [notUtf8]});
  if (args.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else printReport(report);
  process.exit(report.verdict === 'VALID' ? 0 : 1);
}

main();
