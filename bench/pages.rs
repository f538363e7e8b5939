//! Benchmark: vecmigrate's own reader and writer alone, to bound what a whole job can reach.
//!
//! (b) the source scan: pages read in key order with the copy's page sizing and pinned
//! timestamp, by 1 and by R readers over R contiguous key ranges; (c) the target insert: the
//! pages of the 1-reader scan, held in memory, written by 1 and by W writers into a fresh
//! collection with the source's schema. Prints one JSON line per contender.
//!
//!     cargo run --release --example pages -- --source URI --target URI --collection NAME \
//!         [--token T] [--readers 1,4] [--writers 1,4]

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use vecmigrate::credentials::TlsMaterial;
use vecmigrate::domain::{Address, Cursor, Role, Secret};
use vecmigrate::milvus::batch::{first_limit, key_page_limit, next_limit, TARGET_PAGE_BYTES};
use vecmigrate::milvus::grpc::MilvusCluster;
use vecmigrate::milvus::{Batch, Cluster, CollectionInfo, PageRequest, WriteMode};

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    source: String,
    target: String,
    token: Option<Secret>,
    collection: String,
    readers: Vec<usize>,
    writers: Vec<usize>,
}

fn args() -> Result<Args, Failure> {
    let mut a = Args {
        source: String::new(),
        target: String::new(),
        token: None,
        collection: String::new(),
        readers: vec![1, 4],
        writers: vec![1, 4],
    };
    let list = |v: String| -> Result<Vec<usize>, Failure> {
        Ok(v.split(',').map(str::parse).collect::<Result<_, _>>()?)
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--source" => a.source = value,
            "--target" => a.target = value,
            "--token" if !value.is_empty() => a.token = Some(Secret::new(value)),
            "--token" => {}
            "--collection" => a.collection = value,
            "--readers" => a.readers = list(value)?,
            "--writers" => a.writers = list(value)?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if a.source.is_empty() || a.target.is_empty() || a.collection.is_empty() {
        return Err("--source, --target and --collection are required".into());
    }
    Ok(a)
}

async fn connect(role: Role, uri: &str, token: Option<&Secret>) -> Result<MilvusCluster, Failure> {
    let address = Address::parse(uri)?;
    Ok(MilvusCluster::connect(role, &address, token, &TlsMaterial::default()).await?)
}

/// Every key of the collection, in order (key-only reads, as the engine's split does).
async fn keys(
    source: &MilvusCluster,
    info: &CollectionInfo,
    name: &str,
) -> Result<Vec<Cursor>, Failure> {
    let primary = info.primary_field().ok_or("no primary key")?;
    let limit = key_page_limit(primary, u32::MAX);
    let mut all: Vec<Cursor> = Vec::new();
    loop {
        let request = PageRequest {
            database: "default",
            collection: name,
            partition: None,
            primary,
            after: all.last(),
            upto: None,
            read_at: None,
            limit,
            skip_fields: &[],
            subset: Default::default(),
        };
        let page = source.read_keys(&request).await?;
        let short = (page.len() as u32) < limit;
        all.extend(page);
        if short {
            return Ok(all);
        }
    }
}

/// Reads one key range `(after, upto]` page by page as a copy task does.
async fn scan(
    source: &MilvusCluster,
    info: &CollectionInfo,
    name: &str,
    after: Option<Cursor>,
    upto: Option<Cursor>,
) -> Result<Vec<Batch>, Failure> {
    let primary = info.primary_field().ok_or("no primary key")?;
    let mut limit = first_limit(&info.schema, 16_384, TARGET_PAGE_BYTES);
    let (mut cursor, mut read_at, mut pages) = (after, None, Vec::new());
    loop {
        let request = PageRequest {
            database: "default",
            collection: name,
            partition: None,
            primary,
            after: cursor.as_ref(),
            upto: upto.as_ref(),
            read_at,
            limit,
            skip_fields: &[],
            subset: Default::default(),
        };
        let page = source.read_page(&request).await?;
        if page.rows == 0 {
            return Ok(pages);
        }
        read_at = read_at.or(page.read_at);
        limit = next_limit(
            limit,
            page.rows,
            page.sizing_bytes,
            16_384,
            TARGET_PAGE_BYTES,
        );
        cursor = page.last.clone();
        pages.push(page);
    }
}

fn report(contender: &str, parallel: usize, rows: usize, bytes: usize, seconds: f64) {
    println!(
        "{{\"contender\":\"{contender}\",\"parallel\":{parallel},\"rows\":{rows},\"bytes\":{bytes},\"seconds\":{seconds:.3},\"rows_per_s\":{:.0},\"mb_per_s\":{:.2}}}",
        rows as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let a = args()?;
    vecmigrate::tls::install_crypto_provider();
    let source = Arc::new(connect(Role::Source, &a.source, a.token.as_ref()).await?);
    let target = Arc::new(connect(Role::Target, &a.target, a.token.as_ref()).await?);
    let info = Arc::new(
        source
            .describe_collection("default", &a.collection)
            .await?
            .ok_or("no such collection")?,
    );

    let started = Instant::now();
    let all_keys = keys(&source, &info, &a.collection).await?;
    report(
        "key scan",
        1,
        all_keys.len(),
        0,
        started.elapsed().as_secs_f64(),
    );

    // (b) the scan, by R readers over R contiguous key ranges.
    let mut held: Vec<Batch> = Vec::new();
    for &r in &a.readers {
        let cuts: Vec<Cursor> = (1..r)
            .map(|i| all_keys[all_keys.len() * i / r - 1].clone())
            .collect();
        let mut bounds: Vec<(Option<Cursor>, Option<Cursor>)> = Vec::new();
        let mut after = None;
        for cut in cuts {
            bounds.push((after, Some(cut.clone())));
            after = Some(cut);
        }
        bounds.push((after, None));
        let started = Instant::now();
        let mut readers = tokio::task::JoinSet::new();
        for (after, upto) in bounds {
            let (source, info, name) = (source.clone(), info.clone(), a.collection.clone());
            readers.spawn(async move { scan(&source, &info, &name, after, upto).await });
        }
        let mut pages = Vec::new();
        while let Some(done) = readers.join_next().await {
            pages.extend(done??);
        }
        let seconds = started.elapsed().as_secs_f64();
        let (rows, bytes) = pages
            .iter()
            .fold((0, 0), |(r, b), p| (r + p.rows, b + p.bytes));
        report("scan", r, rows, bytes, seconds);
        if held.is_empty() {
            held = pages;
        }
    }

    // (c) the insert, by W writers taking the held pages in turn.
    let held = Arc::new(held);
    for &w in &a.writers {
        let name = format!("bench_pages_{w}w");
        target.drop_collection("default", &name).await?;
        target.create_collection("default", &name, &info).await?;
        let next = Arc::new(Mutex::new(0usize));
        let started = Instant::now();
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..w {
            let (target, held, next, name) =
                (target.clone(), held.clone(), next.clone(), name.clone());
            writers.spawn(async move {
                loop {
                    let i = {
                        let mut n = next.lock().await;
                        *n += 1;
                        *n - 1
                    };
                    let Some(page) = held.get(i) else {
                        return Ok::<(), Failure>(());
                    };
                    target
                        .write_page("default", &name, None, page, WriteMode::Insert)
                        .await?;
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done??;
        }
        let seconds = started.elapsed().as_secs_f64();
        let (rows, bytes) = held
            .iter()
            .fold((0, 0), |(r, b), p| (r + p.rows, b + p.bytes));
        report("insert", w, rows, bytes, seconds);
        target.drop_collection("default", &name).await?;
    }
    Ok(())
}
