"""Seeds a source Milvus with the demo data set: three collections, 53,000 entities, several
partitions, scalar, vector and dynamic fields. Usage: seed_demo.py URI [TOKEN]"""
import random
import sys

from pymilvus import DataType, MilvusClient

uri = sys.argv[1]
token = sys.argv[2] if len(sys.argv) > 2 else ""
client = MilvusClient(uri=uri, token=token)
rng = random.Random(42)


def vec(dim):
    return [rng.uniform(-1, 1) for _ in range(dim)]


def create(name, pk_type, dim, extra_fields, partitions):
    if client.has_collection(name):
        client.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True,
                                        description=f"vecmigrate demo: {name}")
    if pk_type == DataType.VARCHAR:
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    else:
        schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    for args, kwargs in extra_fields:
        schema.add_field(*args, **kwargs)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(name, schema=schema)
    for p in partitions:
        client.create_partition(name, p)
    return index


def insert(name, rows, partition):
    for i in range(0, len(rows), 2000):
        client.insert(name, rows[i:i + 2000], partition_name=partition)


# products: 30,000 entities over four partitions, a dynamic `brand` key
categories = ["electronics", "books", "toys"]
index = create("products", DataType.INT64, 64, [
    (("title", DataType.VARCHAR), {"max_length": 200}),
    (("price", DataType.DOUBLE), {}),
    (("in_stock", DataType.BOOL), {}),
    (("attrs", DataType.JSON), {}),
], categories)
for p, part in enumerate(["_default"] + categories):
    rows = [{"id": i, "embedding": vec(64), "title": f"{part} item {i} — édition {i % 7}",
             "price": round(rng.uniform(1, 500), 2), "in_stock": i % 4 != 0,
             "attrs": {"color": rng.choice(["red", "green", "blue"]), "sizes": [i % 5, i % 3]},
             "brand": f"brand-{i % 40}"}
            for i in range(p * 7500, (p + 1) * 7500)]
    insert("products", rows, part)
client.create_index("products", index)
client.load_collection("products")

# reviews: 15,000 entities with VarChar keys over three partitions
years = ["y2024", "y2025"]
index = create("reviews", DataType.VARCHAR, 32, [
    (("rating", DataType.INT32), {}),
    (("body", DataType.VARCHAR), {"max_length": 1000}),
], years)
for p, part in enumerate(["_default"] + years):
    rows = [{"id": f"r-{i:07d}", "embedding": vec(32), "rating": 1 + i % 5,
             "body": f"review {i}: " + "good " * (i % 20), "helpful": i % 9}
            for i in range(p * 5000, (p + 1) * 5000)]
    insert("reviews", rows, part)
client.create_index("reviews", index)
client.load_collection("reviews")

# users: 8,000 entities, one partition
index = create("users", DataType.INT64, 16, [
    (("name", DataType.VARCHAR), {"max_length": 64}),
    (("age", DataType.INT16), {}),
], [])
insert("users", [{"id": i, "embedding": vec(16), "name": f"user {i}", "age": 18 + i % 60,
                  "tier": rng.choice(["free", "pro"])} for i in range(8000)], "_default")
client.create_index("users", index)
client.load_collection("users")

for name in ["products", "reviews", "users"]:
    stats = client.query(name, filter="", output_fields=["count(*)"])
    print(f"seeded {name}: {stats[0]['count(*)']} entities, partitions {client.list_partitions(name)}",
          file=sys.stderr)
