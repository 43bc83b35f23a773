// The console's views, in navigation order. A view is a module whose
// default export is { id, title, render(container, ctx) }; adding one is
// one new module here plus one line below (docs/console.md). ctx holds
// the tenant, the address's parameters, the API client, the signed-in
// user and navigate(params).

import overview from './overview.js';
import audit from './audit.js';
import terminology from './terminology.js';
import facilities from './facilities.js';
import batches from './batches.js';
import review from './review.js';
import admin from './admin.js';

export const views = [
  overview,
  audit,
  terminology,
  batches,
  review,
  facilities,
  admin,
];
