CREATE TABLE products (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
