// Must NOT compile (scripts/test.sh checks that tsc -p test/generated-wrong
// fails with exactly the one error below): the generated types catch a
// parameter of the wrong type. Everything else here is right.

import { connect } from '../../switchboard.js';
import { methods } from '../../../../examples/dashboard/api.js';

async function main(): Promise<void> {
  const api = methods(connect('ws://127.0.0.1:8080/rpc'));
  const right: number = await api.add(2, 3);
  const wrong: number = await api.add('2', 3);
  console.log(right, wrong);
}

void main;
