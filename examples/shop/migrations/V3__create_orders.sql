CREATE TABLE orders (
    id integer PRIMARY KEY,
    product_id integer NOT NULL REFERENCES products (id),
    quantity integer NOT NULL CHECK (quantity > 0)
);
CREATE INDEX orders_product ON orders (product_id);
