-- A small CRM of its own (PostgreSQL): accounts, contacts, products and
-- orders with their items. Other names and shapes than Chinook's on
-- purpose: bigserial and text keys, numeric money, timestamptz, a boolean
-- active flag. Every table has `modified`, set on every change.
CREATE SEQUENCE IF NOT EXISTS product_sku;
CREATE TABLE accounts (
    account_id bigserial PRIMARY KEY,
    account_name text NOT NULL,
    industry text,
    website text,
    annual_revenue numeric(14, 2),
    is_active boolean NOT NULL DEFAULT true,
    modified timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE contacts (
    contact_id bigserial PRIMARY KEY,
    account_ref bigint REFERENCES accounts (account_id),
    given_name text,
    family_name text,
    email_address text,
    mobile text,
    modified timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE products (
    sku text PRIMARY KEY DEFAULT ('SKU-' || nextval('product_sku')),
    title text NOT NULL,
    list_price numeric(12, 2),
    currency char(3) NOT NULL DEFAULT 'EUR',
    modified timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE orders (
    order_no bigserial PRIMARY KEY,
    contact_ref bigint REFERENCES contacts (contact_id),
    ordered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    state text NOT NULL DEFAULT 'DRAFT',
    modified timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE order_items (
    line_id bigserial PRIMARY KEY,
    order_no bigint NOT NULL REFERENCES orders (order_no),
    sku text REFERENCES products (sku),
    qty numeric(10, 2) NOT NULL,
    price numeric(12, 2) NOT NULL
);
CREATE INDEX accounts_changes ON accounts (modified, CAST(account_id AS TEXT));
CREATE INDEX contacts_changes ON contacts (modified, CAST(contact_id AS TEXT));
CREATE INDEX products_changes ON products (modified, sku);
CREATE INDEX orders_changes ON orders (modified, CAST(order_no AS TEXT));
CREATE INDEX order_items_by_order ON order_items (CAST(order_no AS TEXT));
