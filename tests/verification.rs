//! Verification modes, byte-sized pages and schema overrides, on the two real Milvus servers of
//! the backend under test.

mod common;

use std::time::Duration;

use common::*;
use milvus::proto::common::ConsistencyLevel;
use milvus::proto::milvus::{
    CreateCollectionRequest, DescribeCollectionRequest, DropCollectionRequest, InsertRequest,
    ShowPartitionsRequest,
};
use milvus::proto::schema::{
    field_data, scalar_field, vector_field, CollectionSchema, DataType, FieldData, FieldSchema,
    FloatArray, LongArray, ScalarField, StringArray, VectorField,
};
use prost::Message;
use vecmigrate::domain::{
    JobStatus, OnCountMismatch, PartitionKeyOverride, RepairReason, SchemaOverrides, VerifyMode,
};
use vecmigrate::engine::{EngineConfig, Faults};
use vecmigrate::milvus::batch::TARGET_PAGE_BYTES;

#[tokio::test]
async fn a_garbled_value_is_found_by_sample_and_full_verification_and_repaired() {
    // GIVEN 1,000 rows copied in pages of 200, where the second page is garbled on its way to
    // the target (a named fault hook: one value of its first entity, key 200, changes)
    let source = Seed {
        dynamic: false,
        ..Seed::new(&unique("garbled"), 1_000)
    };
    let servers = Servers::from_env();
    seed(&servers.source, "default", &source).await;
    let runs = [
        (VerifyMode::Count, OnCountMismatch::Repair),
        (VerifyMode::Sample, OnCountMismatch::Repair),
        (VerifyMode::Full, OnCountMismatch::Repair),
        (VerifyMode::Full, OnCountMismatch::Fail),
    ];
    for (mode, on_mismatch) in runs {
        let h = harness(
            fast_settings(),
            EngineConfig::default(),
            Some(Faults::corrupt_write(2)),
        );
        let target = unique("garbled_t");
        let mut request = request(&h.servers, None, &[(&source.name, &target)]);
        request.options.batch_size = 200;
        request.options.verify = mode;
        request.options.on_count_mismatch = on_mismatch;
        // Larger than the collection: every key is in the sample.
        request.options.verify_sample_size = 1_000;

        // WHEN the job runs and verifies in this mode
        let (job, report) = h.run(request).await;
        let job = h.store.get_job(&job.id).await.unwrap().unwrap();
        let collection = &job.collections[0];
        assert_eq!(
            collection.source_count, collection.target_count,
            "counts cannot see it"
        );

        // THEN counts alone pass without looking; a comparison of contents finds key 200 and
        // has its range copied again, or, with `fail`, fails naming the key
        if mode == VerifyMode::Count {
            assert_successful(&report);
            assert!(collection.content.is_none(), "no content check ran");
            assert_eq!(collection.repaired_ranges, 0);
            continue;
        }
        let content = collection.content.as_ref().expect("a content check ran");
        assert_eq!(content.mode, mode);
        if on_mismatch == OnCountMismatch::Repair {
            assert_successful(&report);
            assert_eq!(
                (content.compared, content.differing),
                (1_000, 0),
                "{mode:?}"
            );
            assert_eq!(collection.repaired_ranges, 1, "{:?}", collection.repairs);
            let repaired = &collection.repairs[0];
            assert_eq!(repaired.reason, RepairReason::Content);
            assert!(repaired.repaired && repaired.attempts == 1, "{repaired:?}");
            assert!(
                report
                    .log
                    .iter()
                    .any(|l| l.message.contains("a key in it differs in content")),
                "the log says why the range was copied again"
            );
            assert_same_rows(&h.servers, &source, "default", &target).await;
            continue;
        }
        assert_eq!(report.job.status, JobStatus::Failed, "{mode:?}");
        assert_eq!(
            (content.compared, content.differing),
            (1_000, 1),
            "{mode:?}"
        );
        assert_eq!(content.keys, vec!["200".to_owned()], "{mode:?}");
        assert_eq!(collection.matches, Some(false));
        let error = report.job.error.unwrap().message;
        assert!(
            error.contains("entity contents differ")
                && error.contains(&format!("`default.{}`: 1 of 1000", source.name))
                && error.contains("(keys 200)"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_full_comparison_continues_across_invocations() {
    // GIVEN 3,000 rows, pages of 100, and invocations of a third of a second
    let source = Seed::new(&unique("full"), 3_000);
    let settings = vecmigrate::entrypoints::local::LocalSettings {
        max_run: Some(Duration::from_millis(300)),
        ..fast_settings()
    };
    let h = harness(settings, EngineConfig::default(), None);
    seed(&h.servers.source, "default", &source).await;
    let target = unique("full_t");
    let mut request = request(&h.servers, None, &[(&source.name, &target)]);
    request.options.batch_size = 100;
    request.options.verify = VerifyMode::Full;

    // WHEN the job runs
    let (job, report) = h.run(request).await;

    // THEN the comparison paused and went on in later invocations, and compared every entity
    assert_successful(&report);
    let logs = h.store.list_logs(&job.id).await.unwrap();
    let pauses = logs
        .iter()
        .filter(|l| l.message.starts_with("full comparison paused"))
        .count();
    assert!(pauses >= 1, "the comparison never paused: {logs:#?}");
    let job = h.store.get_job(&job.id).await.unwrap().unwrap();
    let content = job.collections[0].content.clone().unwrap();
    assert_eq!(
        (content.done, content.compared, content.differing),
        (true, 3_000, 0)
    );
    assert_same_rows(&h.servers, &source, "default", &target).await;
}

const WIDE_DIM: usize = 16_384;
const LONG_TEXT: usize = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_rows_stay_under_the_response_limit_without_tuning() {
    // GIVEN 160 rows of a 16,384-d vector (64 KiB) and a 60,000-byte VarChar each (20 MB)
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let name = unique("wide");
    let mut c = raw(&h.servers.source).await;
    let dim = WIDE_DIM.to_string();
    let schema = CollectionSchema {
        name: name.clone(),
        fields: vec![
            FieldSchema {
                name: "id".into(),
                data_type: DataType::Int64 as i32,
                is_primary_key: true,
                ..Default::default()
            },
            FieldSchema {
                name: "vec".into(),
                data_type: DataType::FloatVector as i32,
                type_params: vec![kv("dim", &dim)],
                ..Default::default()
            },
            FieldSchema {
                name: "text".into(),
                data_type: DataType::VarChar as i32,
                type_params: vec![kv("max_length", "65535")],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let r = c
        .create_collection(CreateCollectionRequest {
            collection_name: name.clone(),
            schema: schema.encode_to_vec(),
            shards_num: 1,
            consistency_level: ConsistencyLevel::Strong as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.code, 0, "{r:?}");
    for chunk in (0..160i64).collect::<Vec<_>>().chunks(20) {
        let column = |name: &str, t: DataType, f: field_data::Field| FieldData {
            r#type: t as i32,
            field_name: name.into(),
            field: Some(f),
            ..Default::default()
        };
        let vectors: Vec<f32> = chunk
            .iter()
            .flat_map(|i| (0..WIDE_DIM).map(move |j| ((*i as usize * 7 + j) % 101) as f32 / 101.0))
            .collect();
        let r = c
            .insert(InsertRequest {
                collection_name: name.clone(),
                num_rows: chunk.len() as u32,
                fields_data: vec![
                    column(
                        "id",
                        DataType::Int64,
                        field_data::Field::Scalars(ScalarField {
                            data: Some(scalar_field::Data::LongData(LongArray {
                                data: chunk.to_vec(),
                            })),
                            ..Default::default()
                        }),
                    ),
                    column(
                        "vec",
                        DataType::FloatVector,
                        field_data::Field::Vectors(VectorField {
                            dim: WIDE_DIM as i64,
                            data: Some(vector_field::Data::FloatVector(FloatArray {
                                data: vectors,
                            })),
                            ..Default::default()
                        }),
                    ),
                    column(
                        "text",
                        DataType::VarChar,
                        field_data::Field::Scalars(ScalarField {
                            data: Some(scalar_field::Data::StringData(StringArray {
                                data: chunk
                                    .iter()
                                    .map(|i| format!("{i:05}").repeat(LONG_TEXT / 5))
                                    .collect(),
                            })),
                            ..Default::default()
                        }),
                    ),
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.insert_cnt, chunk.len() as i64, "{:?}", r.status);
    }
    load(&mut c, "default", &name).await;

    // WHEN it is migrated with the default batch size (16,384) and fully compared
    let target = unique("wide_t");
    let mut request = request(&h.servers, None, &[(&name, &target)]);
    request.options.verify = VerifyMode::Full;
    let (job, report) = h.run(request).await;

    // THEN every page stayed under the 16 MiB a page aims at, and every entity arrived unchanged
    assert_successful(&report);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let largest = tasks.iter().map(|t| t.largest_batch_bytes).max().unwrap();
    let batches: u64 = tasks.iter().map(|t| t.batches).sum();
    assert!(
        largest > 0 && largest <= TARGET_PAGE_BYTES as u64,
        "largest page {largest} bytes"
    );
    assert!(batches >= 2, "20 MB in {batches} pages");
    let job = h.store.get_job(&job.id).await.unwrap().unwrap();
    let content = job.collections[0].content.clone().unwrap();
    assert_eq!((content.compared, content.differing), (160, 0));
    assert_eq!(count(&h.servers.target, "default", &target).await, 160);
}

/// Creates a scratch collection (an Int64 key `id`, a 2-d vector `v`, and a partition key `k`
/// when `num_partitions` is given), hands it to `ask`, and drops it.
async fn on_scratch<T>(
    server: &Server,
    description: &str,
    num_partitions: Option<i64>,
    ask: impl AsyncFnOnce(&mut Raw, &str) -> T,
) -> T {
    let mut c = raw(server).await;
    let name = unique("probe");
    let field = |name: &str, t: DataType| FieldSchema {
        name: name.into(),
        data_type: t as i32,
        ..Default::default()
    };
    let mut fields = vec![
        FieldSchema {
            is_primary_key: true,
            ..field("id", DataType::Int64)
        },
        FieldSchema {
            type_params: vec![kv("dim", "2")],
            ..field("v", DataType::FloatVector)
        },
    ];
    if num_partitions.is_some() {
        fields.push(FieldSchema {
            is_partition_key: true,
            ..field("k", DataType::Int64)
        });
    }
    let schema = CollectionSchema {
        name: name.clone(),
        description: description.into(),
        fields,
        ..Default::default()
    };
    c.create_collection(CreateCollectionRequest {
        collection_name: name.clone(),
        schema: schema.encode_to_vec(),
        num_partitions: num_partitions.unwrap_or(0),
        ..Default::default()
    })
    .await
    .unwrap();
    let answer = ask(&mut c, &name).await;
    c.drop_collection(DropCollectionRequest {
        collection_name: name,
        ..Default::default()
    })
    .await
    .unwrap();
    answer
}

/// Partitions a server gives a partition-key collection created with `num_partitions` (Milvus
/// Lite ignores the number).
async fn partitions_for(server: &Server, num_partitions: i64) -> usize {
    on_scratch(
        server,
        "",
        Some(num_partitions),
        async |c: &mut Raw, name: &str| {
            c.show_partitions(ShowPartitionsRequest {
                collection_name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .partition_names
            .len()
        },
    )
    .await
}

/// Whether a server keeps a collection's description (Milvus Lite keeps none).
async fn keeps_descriptions(server: &Server) -> bool {
    on_scratch(server, "kept?", None, async |c: &mut Raw, name: &str| {
        c.describe_collection(DescribeCollectionRequest {
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .schema
        .is_some_and(|s| s.description == "kept?")
    })
    .await
}

#[tokio::test]
async fn schema_overrides_change_only_what_they_name() {
    // GIVEN a collection without a dynamic field, with a user partition
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let source = Seed {
        dynamic: false,
        partitions: vec!["p_one".into()],
        ..Seed::new(&unique("over"), 900)
    };
    seed(&h.servers.source, "default", &source).await;
    let target = unique("over_t");
    let mut request = request(&h.servers, None, &[(&source.name, &target)]);
    let overrides = SchemaOverrides {
        enable_dynamic_field: Some(true),
        partition_key: Some(PartitionKeyOverride {
            field: "title".into(),
            num_partitions: Some(4),
        }),
        description: Some("moved by vecmigrate ✓".into()),
    };
    request.databases[0].collections[0].schema_overrides = Some(overrides.clone());
    request.options.verify = VerifyMode::Full;
    let mut expected = schema_of(&h.servers.source, "default", &source.name).await;

    // WHEN it is migrated with three overrides (or, where the target keeps no descriptions,
    // first with three, then with the two it can honour)
    let keeps_descriptions = keeps_descriptions(&h.servers.target).await;
    if keeps_descriptions {
        expected[0] = "dynamic=true description=\"moved by vecmigrate ✓\"".into();
    } else {
        let (_, refused) = h.run(request.clone()).await;
        assert_eq!(refused.job.status, JobStatus::Failed);
        let error = refused.job.error.unwrap().message;
        assert!(
            error.contains("databases[0].collections[0].schema_overrides.description: the target")
                && error.contains("nothing was written"),
            "{error}"
        );
        request.databases[0].collections[0].schema_overrides = Some(SchemaOverrides {
            description: None,
            ..overrides
        });
        expected[0] = expected[0].replace("dynamic=false", "dynamic=true");
    }
    let (_, report) = h.run(request).await;
    assert_successful(&report);

    // THEN the target has exactly those changes, and the rest of the schema as it was
    for line in expected.iter_mut().filter(|l| l.starts_with("title ")) {
        *line = line.replace("partition_key=false", "partition_key=true");
    }
    assert_eq!(
        schema_of(&h.servers.target, "default", &target).await,
        expected
    );
    let mut c = raw(&h.servers.target).await;
    let described = c
        .describe_collection(DescribeCollectionRequest {
            collection_name: target.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let partitions = partitions_of(&h.servers.target, "default", &target).await;
    assert_eq!(
        partitions.len(),
        partitions_for(&h.servers.target, 4).await,
        "{partitions:?} ({} asked)",
        described.num_partitions
    );
    assert!(
        !partitions.contains(&"p_one".to_owned()),
        "routed by key, not by the source's partitions"
    );
    // AND every entity of both source partitions arrived unchanged (the new dynamic field is
    // empty)
    let source_rows = read_rows(&h.servers.source, "default", &source.name, &source).await;
    let mut target_rows = read_rows(&h.servers.target, "default", &target, &source).await;
    for row in target_rows.values_mut() {
        if row.get("$meta").is_some_and(|m| m == "json:{}") {
            row.remove("$meta");
        }
    }
    assert_eq!(source_rows.len(), 900);
    assert_eq!(target_rows, source_rows);
}

#[tokio::test]
async fn overrides_that_cannot_be_honoured_are_refused_before_anything_is_written() {
    // GIVEN three collections whose overrides name a missing field, a Double partition key, and
    // turn off a dynamic field the source uses
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let seeds: Vec<Seed> = (0..3)
        .map(|i| Seed::new(&unique(&format!("bad{i}")), 10))
        .collect();
    for s in &seeds {
        seed(&h.servers.source, "default", s).await;
    }
    let targets: Vec<String> = seeds.iter().map(|s| format!("{}_t", s.name)).collect();
    let pairs: Vec<(&str, &str)> = seeds
        .iter()
        .zip(&targets)
        .map(|(s, t)| (s.name.as_str(), t.as_str()))
        .collect();
    let mut request = request(&h.servers, None, &pairs);
    let key = |field: &str| SchemaOverrides {
        partition_key: Some(PartitionKeyOverride {
            field: field.into(),
            num_partitions: None,
        }),
        ..Default::default()
    };
    request.databases[0].collections[0].schema_overrides = Some(key("nope"));
    request.databases[0].collections[1].schema_overrides = Some(key("score"));
    request.databases[0].collections[2].schema_overrides = Some(SchemaOverrides {
        enable_dynamic_field: Some(false),
        ..Default::default()
    });

    // WHEN the job runs
    let (_, report) = h.run(request).await;

    // THEN preflight refuses it, naming every override and its problem, and writes nothing
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.unwrap().message;
    for expected in [
        "databases[0].collections[0].schema_overrides.partition_key.field: the collection has no field `nope`",
        "databases[0].collections[1].schema_overrides.partition_key.field: `score` cannot be a partition key: its type is Double",
        "databases[0].collections[2].schema_overrides.enable_dynamic_field: the source collection has a dynamic field",
        "nothing was written",
    ] {
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }
    let mut c = raw(&h.servers.target).await;
    for t in &targets {
        let r = c
            .describe_collection(DescribeCollectionRequest {
                collection_name: t.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.schema.is_none() || r.status.map(|s| s.code != 0).unwrap_or(false),
            "{t} was created"
        );
    }
}
