#!/usr/bin/env python3
"""possim: a point-of-sale simulator writing sales into a POS SQLite file.

It writes the way a real till does, each sale in one transaction:

    transactions       1 row (totals, payment, created_at)
    transaction_items  1 to 5 rows
    payments           1 row, composite key (transaction_id, line_no)

Money is in integer minor units (cents); created_at/updated_at are
'YYYY-MM-DD HH:MM:SS' from a simulated clock, so a given seed always gives
the same data. After a sale, with probability update_fraction an earlier
sale is updated (payment_status, updated_at), and with probability
delete_fraction an earlier sale is deleted (items, payment, transaction in
one transaction). The agent may use the same file at the same time, so a
busy timeout is set.

As a module:   possim.simulate(db, sales=1000, seed=1) -> stats dict
As a command:  possim.py --db FILE --sales N --seed S [--rate R]
               [--duration S] [--update-fraction F] [--delete-fraction F]

Every loop is bounded: by --sales, and by --duration when given.
"""

import argparse
import datetime
import json
import random
import sqlite3
import sys
import time

PRODUCTS = [
    ("Coffee beans 1kg", 1899), ("Milk 1l", 119), ("Bread", 249),
    ("Butter 250g", 329), ("Eggs x10", 399), ("Apples 1kg", 279),
    ("Cheese 400g", 549), ("Orange juice", 299), ("Rice 2kg", 459),
    ("Pasta 500g", 159), ("Tomatoes", 329), ("Chocolate", 189),
    ("Tea x40", 399), ("Sugar 1kg", 139), ("Olive oil", 899),
    ("Yoghurt", 89), ("Water 6x1.5l", 359), ("Soap", 199),
    ("Toothpaste", 249), ("Batteries AA", 699),
]
METHODS = ["cash", "card", "card", "card", "mobile"]
CUSTOMERS = [None, None, None, "A. Meyer", "J. Novak", "K. Tanaka",
             "L. O'Brien", "M. Rossi", "Zoë \"Z\" Ünal"]
BASE_TIME = datetime.datetime(2024, 3, 1, 8, 0, 0)


def _ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")


class Simulator:
    """Writes sales into one POS file. Deterministic for a given seed and
    starting file content."""

    def __init__(self, db, seed=1, update_fraction=0.1, delete_fraction=0.02,
                 store_id=1, busy_timeout_s=30.0, synchronous=None):
        self.rng = random.Random(seed)
        self.update_fraction = update_fraction
        self.delete_fraction = delete_fraction
        self.store_id = store_id
        self.conn = sqlite3.connect(db, timeout=busy_timeout_s,
                                    isolation_level=None)
        if synchronous:
            self.conn.execute("PRAGMA synchronous = %s" % synchronous)
        self.live = [r[0] for r in self.conn.execute(
            "SELECT id FROM transactions ORDER BY id")]
        self.clock = BASE_TIME + datetime.timedelta(
            seconds=self.rng.randrange(0, 3600))
        self.stats = {"sales": 0, "items": 0, "payments": 0, "updates": 0,
                      "deletes": 0}

    def close(self):
        self.conn.close()

    def _tick(self):
        self.clock += datetime.timedelta(seconds=self.rng.randrange(5, 180))
        return _ts(self.clock)

    def _txn(self, fn):
        """Runs fn(cursor) in one write transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            fn(c)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def sale(self):
        """One sale: a transaction, 1-5 items and one payment."""
        rng = self.rng
        now = self._tick()
        lines = []
        for _ in range(rng.randint(1, 5)):
            pid = rng.randrange(len(PRODUCTS))
            name, price = PRODUCTS[pid]
            qty = rng.choice([1, 1, 1, 2, 3])
            lines.append((pid + 1, name, qty, price, qty * price))
        subtotal = sum(x[4] for x in lines)
        tax = subtotal * 7 // 107
        method = rng.choice(METHODS)
        received = subtotal if method != "cash" else \
            ((subtotal + 999) // 1000) * 1000
        user = rng.randint(1, 4)
        customer = rng.choice(CUSTOMERS)

        def write(c):
            cur = c.execute(
                "INSERT INTO transactions(store_id, user_id, total_cost, "
                "payment_type, payment_method, received_amount, "
                "change_amount, customer_name, payment_status, created_at, "
                "updated_at, tax) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (self.store_id, user, subtotal, "sale", method, received,
                 received - subtotal, customer, "paid", now, now, tax))
            tid = cur.lastrowid
            for pid, name, qty, price, sub in lines:
                c.execute(
                    "INSERT INTO transaction_items(transaction_id, "
                    "product_id, product_name, qty, price, subtotal) "
                    "VALUES (?,?,?,?,?,?)", (tid, pid, name, qty, price, sub))
            c.execute("INSERT INTO payments(transaction_id, line_no, method, "
                      "amount) VALUES (?,?,?,?)", (tid, 1, method, subtotal))
            self.live.append(tid)
        self._txn(write)
        self.stats["sales"] += 1
        self.stats["items"] += len(lines)
        self.stats["payments"] += 1

    def update(self):
        """Updates an earlier sale: a refund or a late payment status."""
        if not self.live:
            return
        tid = self.rng.choice(self.live)
        status = self.rng.choice(["refunded", "voided", "paid-late"])
        now = self._tick()

        def write(c):
            c.execute("UPDATE transactions SET payment_status = ?, "
                      "updated_at = ? WHERE id = ?", (status, now, tid))
        self._txn(write)
        self.stats["updates"] += 1

    def delete(self):
        """Deletes an earlier sale with its items and payment."""
        if not self.live:
            return
        i = self.rng.randrange(len(self.live))
        tid = self.live[i]

        def write(c):
            c.execute("DELETE FROM transaction_items WHERE transaction_id = ?",
                      (tid,))
            c.execute("DELETE FROM payments WHERE transaction_id = ?", (tid,))
            c.execute("DELETE FROM transactions WHERE id = ?", (tid,))
        self._txn(write)
        self.live[i] = self.live[-1]
        self.live.pop()
        self.stats["deletes"] += 1

    def step(self):
        """One sale, maybe followed by an update and a delete."""
        self.sale()
        if self.rng.random() < self.update_fraction:
            self.update()
        if self.rng.random() < self.delete_fraction:
            self.delete()


def simulate(db, sales=1000, seed=1, update_fraction=0.1,
             delete_fraction=0.02, rate=None, duration=None, store_id=1,
             synchronous=None, progress=None):
    """Writes up to `sales` sales (stopping early after `duration` seconds
    when given), at most `rate` sales per second when given. Returns the
    counts of what was written."""
    if sales is None or sales < 0:
        raise ValueError("sales must be a non-negative number")
    sim = Simulator(db, seed, update_fraction, delete_fraction, store_id,
                    synchronous=synchronous)
    t0 = time.monotonic()
    try:
        for n in range(sales):
            if duration is not None and time.monotonic() - t0 >= duration:
                break
            if rate:
                ahead = t0 + n / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            sim.step()
            if progress and (n + 1) % progress == 0:
                print("possim: %d sales" % (n + 1), file=sys.stderr,
                      flush=True)
    finally:
        sim.close()
    st = dict(sim.stats)
    st["seconds"] = round(time.monotonic() - t0, 2)
    return st


def sales(db, n, seed):
    """Writes n plain sales (no updates or deletes) with a fixed seed."""
    sim = Simulator(db, seed=seed, update_fraction=0, delete_fraction=0)
    try:
        for _ in range(n):
            sim.sale()
    finally:
        sim.close()


def big_sale(db, total=5000000):
    """One sale of `total` in one transaction: a transaction, two items
    and a payment (tests put a CHECK on the center that refuses it).
    Returns the transaction id."""
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        c.execute("BEGIN IMMEDIATE")
        cur = c.execute(
            "INSERT INTO transactions(store_id, user_id, total_cost, "
            "payment_type, payment_method, received_amount, change_amount, "
            "customer_name, payment_status, created_at, updated_at, tax) "
            "VALUES (1, 1, ?, 'sale', 'card', ?, 0, 'Big Spender', 'paid', "
            "'2024-03-02 10:00:00', '2024-03-02 10:00:00', 0)",
            (total, total))
        tid = cur.lastrowid
        for pid in (1, 2):
            c.execute("INSERT INTO transaction_items(transaction_id, "
                      "product_id, product_name, qty, price, subtotal) "
                      "VALUES (?, ?, 'Gold bar', 1, ?, ?)",
                      (tid, pid, total // 2, total // 2))
        c.execute("INSERT INTO payments(transaction_id, line_no, method, "
                  "amount) VALUES (?, 1, 'card', ?)", (tid, total))
        c.execute("COMMIT")
    finally:
        c.close()
    return tid


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write simulated sales into a POS SQLite file.")
    ap.add_argument("--db", required=True, help="the POS SQLite file")
    ap.add_argument("--sales", type=int, default=1000,
                    help="number of sales to write (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    ap.add_argument("--update-fraction", type=float, default=0.1,
                    help="chance that a sale is followed by an update of an "
                    "earlier sale (default 0.1)")
    ap.add_argument("--delete-fraction", type=float, default=0.02,
                    help="chance that a sale is followed by the deletion of "
                    "an earlier sale (default 0.02)")
    ap.add_argument("--rate", type=float, default=None,
                    help="at most this many sales per second")
    ap.add_argument("--duration", type=float, default=None,
                    help="stop after this many seconds")
    ap.add_argument("--store-id", type=int, default=1)
    ap.add_argument("--progress", type=int, default=0,
                    help="print a line every N sales")
    a = ap.parse_args(argv)
    st = simulate(a.db, a.sales, a.seed, a.update_fraction,
                  a.delete_fraction, a.rate, a.duration, a.store_id,
                  progress=a.progress or None)
    print(json.dumps(st))
    return 0


if __name__ == "__main__":
    sys.exit(main())
