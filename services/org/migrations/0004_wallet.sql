-- The tenant wallet: one balance per tenant and its append-only transactions. Amounts are exact
-- integers of nano-units (units * 10^9 + nanos of switchboard.common.v1.Money), never floating
-- point.
--
-- The balance cannot diverge from the transactions, whatever SQL runs against these tables:
--   * transactions are numbered 1, 2, 3, ... per tenant (seq), and each one must carry
--     balance_after = the wallet's balance before it + amount, checked under the wallet's row
--     lock (wallet_transactions_chain);
--   * the wallet's balance and transaction_count only change one transaction at a time, to the
--     balance_after and seq of a transaction that exists (wallets_guard), and a new wallet starts
--     at zero;
--   * at commit, the wallet must have caught up with every transaction inserted
--     (wallet_transactions_applied);
--   * transactions are never updated or deleted (wallet_transactions_append_only).
-- By induction the balance is the balance_after of transaction number transaction_count, which is
-- the sum of all amounts.

CREATE TABLE org.wallets (
  tenant_id uuid PRIMARY KEY,
  currency text NOT NULL,                        -- ISO 4217
  balance bigint NOT NULL DEFAULT 0,             -- nano-units
  transaction_count bigint NOT NULL DEFAULT 0,   -- seq of the newest transaction
  credit_limit bigint NOT NULL DEFAULT 0,        -- nano-units; the balance may go down to -this
  low_balance_threshold bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (currency ~ '^[A-Z]{3}$'),
  CHECK (credit_limit >= 0),
  CHECK (transaction_count >= 0),
  CHECK (transaction_count > 0 OR balance = 0)
);

CREATE TABLE org.wallet_transactions (
  tenant_id uuid NOT NULL REFERENCES org.wallets (tenant_id),
  id uuid PRIMARY KEY,
  seq bigint NOT NULL,
  type smallint NOT NULL,                        -- switchboard.org.v1.WalletTransactionType
  amount bigint NOT NULL,                        -- nano-units; positive credits, negative debits
  balance_after bigint NOT NULL,                 -- nano-units
  idempotency_key text NOT NULL,
  call_id text NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT '',
  external_reference text NOT NULL DEFAULT '',
  created_by_user_id uuid,                       -- NULL for charges made by the platform
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (seq >= 1),
  CHECK (amount <> 0),
  CHECK (type BETWEEN 1 AND 4),
  CHECK (idempotency_key <> '')
);
-- One transaction per key and tenant: of two requests with the same key, this decides the winner.
CREATE UNIQUE INDEX wallet_transactions_idempotency_key
  ON org.wallet_transactions (tenant_id, idempotency_key);
-- The chain, and newest-first listing (seq grows with time within a tenant).
CREATE UNIQUE INDEX wallet_transactions_seq_key ON org.wallet_transactions (tenant_id, seq DESC);
CREATE INDEX wallet_transactions_call_idx
  ON org.wallet_transactions (tenant_id, call_id) WHERE call_id <> '';
CREATE INDEX wallet_transactions_created_idx
  ON org.wallet_transactions (tenant_id, created_at DESC);

-- A transaction continues the chain of its wallet. Locks the wallet row, so that concurrent
-- inserts for one tenant queue here even if their code did not lock it first.
CREATE FUNCTION org.wallet_transactions_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  w org.wallets%ROWTYPE;
BEGIN
  SELECT * INTO w FROM org.wallets WHERE tenant_id = NEW.tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'wallet transaction without a wallet' USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NEW.seq <> w.transaction_count + 1 THEN
    RAISE EXCEPTION 'wallet transaction out of sequence (seq %, expected %)',
      NEW.seq, w.transaction_count + 1 USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.balance_after <> w.balance + NEW.amount THEN
    RAISE EXCEPTION 'wallet transaction balance_after does not continue the balance'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER wallet_transactions_chain BEFORE INSERT ON org.wallet_transactions
  FOR EACH ROW EXECUTE FUNCTION org.wallet_transactions_chain();

CREATE FUNCTION org.wallet_transactions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'wallet transactions are append-only' USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER wallet_transactions_append_only BEFORE UPDATE OR DELETE ON org.wallet_transactions
  FOR EACH ROW EXECUTE FUNCTION org.wallet_transactions_append_only();

-- The wallet's balance moves only to the next transaction of its chain; its currency only while
-- it has none.
CREATE FUNCTION org.wallets_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.balance <> 0 OR NEW.transaction_count <> 0 THEN
      RAISE EXCEPTION 'a wallet starts empty' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.tenant_id <> OLD.tenant_id THEN
    RAISE EXCEPTION 'a wallet cannot change tenant' USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.currency <> OLD.currency AND OLD.transaction_count > 0 THEN
    RAISE EXCEPTION 'a wallet with transactions cannot change currency'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.balance <> OLD.balance OR NEW.transaction_count <> OLD.transaction_count THEN
    IF NEW.transaction_count <> OLD.transaction_count + 1 OR NOT EXISTS (
         SELECT 1 FROM org.wallet_transactions t
          WHERE t.tenant_id = NEW.tenant_id AND t.seq = NEW.transaction_count
            AND t.balance_after = NEW.balance) THEN
      RAISE EXCEPTION 'a wallet balance changes only with its next transaction'
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER wallets_guard BEFORE INSERT OR UPDATE ON org.wallets
  FOR EACH ROW EXECUTE FUNCTION org.wallets_guard();

-- At commit every inserted transaction has been applied to its wallet.
CREATE FUNCTION org.wallet_transactions_applied() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM org.wallets w
                  WHERE w.tenant_id = NEW.tenant_id AND w.transaction_count >= NEW.seq) THEN
    RAISE EXCEPTION 'wallet transaction not applied to the wallet balance'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER wallet_transactions_applied AFTER INSERT ON org.wallet_transactions
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION org.wallet_transactions_applied();
CREATE TRIGGER wallet_transactions_no_truncate BEFORE TRUNCATE ON org.wallet_transactions
  FOR EACH STATEMENT EXECUTE FUNCTION org.wallet_transactions_append_only();
