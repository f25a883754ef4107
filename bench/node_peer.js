// The Node peer of `make bench` (bench/bench.py): what most Africa's Talking developers would write instead.
//
// ussd-menu-builder 1.2 on Express, sessions in Redis (node-redis), two workers (node:cluster), the same
// two-screen menu as the product's main menu: the dial identifies the caller and shows the main menu
// (page 1, "98" for page 2, "0" back), "1" shows the balance, fetched from the same reference back
// office the product calls (GET /api/v1/accounts/{n}/balance, keep-alive fetch).
// The packages come from npm into a scratch folder (NODE_PATH); nothing of them is committed.
//
// Env: PORT, REDIS_URL, BACKOFFICE_URL, BACKOFFICE_API_KEY (optional), WORKERS (default 2).
'use strict';

const cluster = require('node:cluster');

const WORKERS = Number(process.env.WORKERS || 2);
const TTL_SECONDS = 180;
// Who a number is: the peer's stand-in for the product's identification (no back-office call on a dial).
const CUSTOMERS = { '+221770000001': { account: '1000001', language: 'fr' } };

const HOME = [
  'Senelec - {account}', '1. Solde et factures', '2. Consommation', '3. Payer', '4. Panne/réclamation',
  '98. Suite',
].join('\n');
const HOME_2 = [
  '5. Suivi demande', '6. Délai de paiement', '7. Simulateur', '8. Préférences', '0. Retour',
].join('\n');

if (cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

async function serve() {
  const express = require('express');
  const UssdMenu = require('ussd-menu-builder');
  const { createClient } = require('redis');

  const redis = createClient({ url: process.env.REDIS_URL });
  redis.on('error', (err) => console.error('redis', err.message));
  await redis.connect();
  const backoffice = process.env.BACKOFFICE_URL;
  const headers = process.env.BACKOFFICE_API_KEY ? { 'X-Api-Key': process.env.BACKOFFICE_API_KEY } : {};

  const key = (sessionId) => `node:s:${sessionId}`;
  const sessionConfig = {
    start: async () => undefined,
    end: (sessionId) => redis.del(key(sessionId)),
    get: (sessionId, field) => redis.hGet(key(sessionId), field),
    // one round trip: the field and the session's TTL together
    set: (sessionId, field, value) => redis.multi().hSet(key(sessionId), field, value)
      .expire(key(sessionId), TTL_SECONDS).exec(),
  };

  function buildMenu() {
    // One menu per request: ussd-menu-builder keeps the request's arguments on the instance.
    const menu = new UssdMenu();
    menu.sessionConfig(sessionConfig);
    const home = { '1': 'balance', '98': 'home_2' };
    menu.startState({
      run: async () => {
        const customer = CUSTOMERS[menu.args.phoneNumber];
        if (!customer) return menu.end('Numéro inconnu.');
        await menu.session.set('account', customer.account);
        return menu.con(HOME.replace('{account}', customer.account));
      },
      next: home,
    });
    menu.state('home', {
      run: async () => menu.con(HOME.replace('{account}', await menu.session.get('account'))),
      next: home,
    });
    menu.state('home_2', {
      run: async () => {
        await menu.session.get('account');
        menu.con(HOME_2);
      },
      next: { '0': 'home' },
    });
    menu.state('balance', {
      run: async () => {
        const account = await menu.session.get('account');
        const answer = await fetch(`${backoffice}/api/v1/accounts/${account}/balance`, { headers });
        if (!answer.ok) {
          console.error(`back office answered ${answer.status}`);
          return menu.end('Service momentanément indisponible.');
        }
        const balance = await answer.json();
        return menu.con(`Compte ${account}\nSolde dû: ${balance.amount} F CFA\n`
          + `Factures impayées: ${balance.unpaid_bills}\n1. Dernières factures\n0. Retour`);
      },
      next: { '0': 'home' },
    });
    menu.on('error', (err) => console.error('menu', err.message));
    return menu;
  }

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.get('/healthz', (req, res) => res.type('text/plain').send('ok'));
  app.post('/ussd', async (req, res) => {
    try {
      res.type('text/plain').send(await buildMenu().run(req.body));
    } catch (err) {
      console.error(err);
      res.type('text/plain').send('END Service momentanément indisponible.');
    }
  });
  app.listen(Number(process.env.PORT), '127.0.0.1');
}
