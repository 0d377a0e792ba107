// SPDX-License-Identifier: ISC
// The audience file of bench/run.mjs's importRate(): N rows of a
// Mailchimp-style subscribed members export, every row a new person.
// node bench/import-file.mjs N FILE
import fs from 'node:fs';

const rows = Number(process.argv[2] || 100000);
const lines = ['Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LAST_CHANGED'];
for (let i = 0; i < rows; i++) {
  const t = `2023-0${1 + (i % 9)}-1${i % 10} 10:${String(i % 60).padStart(2, '0')}:00`;
  lines.push(`import${i}@example.com,F${i},L${i},2,${t},10.0.${i % 256}.1,${t},10.0.${i % 256}.1,${t}`);
}
fs.writeFileSync(process.argv[3], `${lines.join('\n')}\n`);
