//! Indicator files read for threat-intelligence matching: STIX bundles and
//! MISP events (JSON), CSV, and plain blocklists, merged into one set.

use std::path::{Path, PathBuf};

use riposte_intel::{CsvColumns, Indicator, IndicatorSet, import_bundle, read_blocklist, read_csv};

/// An indicator file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct IntelFileError {
    pub path: PathBuf,
    pub reason: String,
}

/// What loading indicator files did.
#[derive(Default)]
pub struct Loaded {
    pub set: IndicatorSet,
    pub read: usize,
    /// Lines or objects left out, with where and why.
    pub skipped: Vec<String>,
}

/// Reads indicator files into one set (duplicates across files merged),
/// each file the source of its indicators.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, IntelFileError> {
    load_sourced(&sourced_by_file_name(paths))
}

/// Each file with its name as the source of its indicators.
fn sourced_by_file_name(paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    paths
        .iter()
        .map(|path| {
            // The indicators added through the API are known by where they came from.
            let source = match path.file_name().map(|name| name.to_string_lossy().into_owned()) {
                Some(name) if name == LOCAL_FILE => "api".to_owned(),
                Some(name) => name,
                None => path.display().to_string(),
            };
            (path.clone(), source)
        })
        .collect()
}

/// Reads indicator files, each with the source its indicators are from.
fn load_sourced(files: &[(PathBuf, String)]) -> Result<Loaded, IntelFileError> {
    let mut loaded = Loaded::default();
    for (path, source) in files {
        let text = std::fs::read_to_string(path)
            .map_err(|error| IntelFileError { path: path.clone(), reason: format!("cannot read: {error}") })?;
        let indicators = read_file(path, &text, source, &mut loaded.skipped)?;
        loaded.read += indicators.len();
        for indicator in indicators {
            loaded.set.insert(indicator);
        }
    }
    Ok(loaded)
}

fn read_file(
    path: &Path,
    text: &str,
    source: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<Indicator>, IntelFileError> {
    let place = path.display();
    let fail = |reason: String| IntelFileError { path: path.to_path_buf(), reason };
    if text.trim_start().starts_with('{') && text.contains("\"Event\"") {
        let import =
            riposte_intel::import_event(text, source).map_err(|error| fail(format!("not a MISP event: {error}")))?;
        for (kind, value, reason) in &import.skipped {
            skipped.push(format!("{place}: {kind} {value:?}: {reason}"));
        }
        return Ok(import.indicators);
    }
    // A pulled MISP feed: its events, in a list.
    if text.trim_start().starts_with('[') && text.contains("\"Event\"") {
        let events: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|error| fail(format!("not a list of MISP events: {error}")))?;
        let mut indicators = Vec::new();
        for (position, event) in events.iter().enumerate() {
            match riposte_intel::import_event(&event.to_string(), source) {
                Ok(import) => {
                    for (kind, value, reason) in &import.skipped {
                        skipped.push(format!("{place}: event {position}: {kind} {value:?}: {reason}"));
                    }
                    indicators.extend(import.indicators);
                }
                Err(error) => skipped.push(format!("{place}: event {position}: {error}")),
            }
        }
        return Ok(indicators);
    }
    if text.trim_start().starts_with(['{', '[']) {
        let import = import_bundle(text, source).map_err(|error| fail(format!("not a STIX bundle: {error}")))?;
        for (id, _, reason) in &import.unmatchable {
            skipped.push(format!("{place}: {id}: {reason}"));
        }
        for (position, reason) in &import.errors {
            skipped.push(format!("{place}: object {position}: {reason}"));
        }
        return Ok(import.indicators);
    }
    if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("csv")) {
        // The header as `read_csv` finds it: past blank and `#` lines.
        let header = text
            .lines()
            .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .unwrap_or("")
            .to_ascii_lowercase();
        let columns: Vec<&str> = header.split(',').map(|name| name.trim().trim_matches('"')).collect();
        let pick = |names: &[&str]| names.iter().find(|name| columns.contains(name)).map(|name| (*name).to_owned());
        let Some(value) = pick(&["indicator", "value", "ioc", "observable"]) else {
            return Err(fail("no indicator, value, ioc or observable column".into()));
        };
        let mapping = CsvColumns {
            value,
            kind_column: pick(&["type", "kind", "indicator_type"]),
            confidence: pick(&["confidence", "score"]),
            tags: pick(&["tags", "labels", "attribute_tag"]),
            // MISP's CSV export: `date` (of the attribute), and `to_ids`.
            first_seen: pick(&["first_seen", "firstseen", "date"]),
            last_seen: pick(&["last_seen", "lastseen"]),
            tlp: pick(&["tlp"]),
            to_ids: pick(&["to_ids"]),
            ..CsvColumns::default()
        };
        let (indicators, report) = read_csv(text, source, &mapping).map_err(|error| fail(error.to_string()))?;
        skipped.extend(report.skipped.into_iter().map(|(line, reason)| format!("{place}:{line}: {reason}")));
        return Ok(indicators);
    }
    let (indicators, report) = read_blocklist(text, source, None);
    skipped.extend(report.skipped.into_iter().map(|(line, reason)| format!("{place}:{line}: {reason}")));
    Ok(indicators)
}

/// What pulling one feed did.
#[derive(Debug)]
pub struct Pulled {
    pub name: String,
    /// Indicators in the copy now kept, or why the last good copy stays.
    pub outcome: Result<usize, String>,
}

/// Where a feed's last good copy is kept.
/// What `set` says of `value` (already refanged) at `now`: each indicator
/// with its decayed score and whether it is live (the API's look-up and the
/// playbooks' `intel.lookup`).
pub fn lookup_json(set: &IndicatorSet, value: &str, now: i64) -> Vec<serde_json::Value> {
    set.lookup(value)
        .iter()
        .map(|&id| serde_json::json!({"indicator": set.get(id), "score": set.score(id, now), "live": set.is_live(id, now)}))
        .collect()
}

pub fn feed_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("intel")
}

/// Fetches every feed now, calling `starting` with each feed's name before
/// it is fetched. A feed that fails (unreachable, an HTTP error, a body that
/// does not read as indicators) keeps its last good copy.
pub async fn pull(feeds: &[crate::config::FeedConfig], data_dir: &Path, starting: impl Fn(&str)) -> Vec<Pulled> {
    let dir = feed_dir(data_dir);
    let mut pulled = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for feed in feeds {
        starting(&feed.name);
        // Each feed's copy is its own file, and `local` is the API's.
        let file_name = crate::sources::sanitize(&feed.name);
        let outcome = if file_name == LOCAL_FILE.trim_end_matches(".json") {
            Err(format!("the name {:?} is kept for indicators added through the API", feed.name))
        } else if names.contains(&file_name) {
            Err(format!("another feed's copy is already named {file_name:?}: give this one another name"))
        } else {
            names.push(file_name);
            pull_one(feed, &dir).await
        };
        pulled.push(Pulled { name: feed.name.clone(), outcome });
    }
    pulled
}

async fn pull_one(feed: &crate::config::FeedConfig, dir: &Path) -> Result<usize, String> {
    let policy = crate::fetch::FetchPolicy { allow_private: feed.allow_private, ..Default::default() };
    let auth = match (&feed.token, &feed.user, &feed.password) {
        (Some(token), _, _) => crate::fetch::Auth::Bearer(token),
        (None, Some(user), Some(password)) => crate::fetch::Auth::Basic { user, password },
        _ => crate::fetch::Auth::None,
    };
    // State to keep once the copy is kept (a TAXII feed's last `added_after`).
    let mut state: Option<(PathBuf, String)> = None;
    let text = match &feed.taxii_collection {
        Some(collection) => {
            let (text, after) = taxii_pull(feed, collection, &policy, auth, dir).await?;
            state = after;
            text
        }
        None if feed.misp_feed => misp_feed_pull(feed, &policy, auth, dir).await?,
        None if feed.misp_api => {
            let (text, newest) = misp_api_pull(feed, &policy, dir).await?;
            state = newest;
            text
        }
        None => {
            let body = crate::fetch::fetch(&feed.url, &policy, auth, None).await.map_err(|error| error.to_string())?;
            String::from_utf8(body).map_err(|_| "the feed is not UTF-8 text".to_owned())?
        }
    };
    let trimmed = text.trim_start();
    let extension = if trimmed.starts_with(['{', '[']) {
        "json"
    } else if text.lines().next().is_some_and(|header| {
        let header = header.to_ascii_lowercase();
        header.contains(',')
            && ["indicator", "value", "ioc", "observable"]
                .iter()
                .any(|name| header.split(',').any(|column| column.trim().trim_matches('"') == *name))
    }) {
        "csv"
    } else {
        "txt"
    };
    let safe_name = crate::sources::sanitize(&feed.name);
    let path = dir.join(format!("{safe_name}.{extension}"));
    // Read before kept: a body that is not indicators leaves the last copy.
    let mut skipped = Vec::new();
    let indicators = read_file(&path, &text, &feed.name, &mut skipped).map_err(|error| error.reason)?;
    if indicators.is_empty() && !skipped.is_empty() {
        return Err(format!("no indicator could be read ({} entries left out)", skipped.len()));
    }
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot write {}: {error}", dir.display()))?;
    // Other extensions of an earlier copy would be loaded too: removed.
    for other in ["json", "csv", "txt"].iter().filter(|other| **other != extension) {
        let _ = std::fs::remove_file(dir.join(format!("{safe_name}.{other}")));
    }
    let temporary = path.with_extension(format!("{extension}.new"));
    std::fs::write(&temporary, &text).map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    std::fs::rename(&temporary, &path).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    if let Some((state_path, value)) = state {
        std::fs::write(&state_path, value)
            .map_err(|error| format!("cannot write {}: {error}", state_path.display()))?;
    }
    Ok(indicators.len())
}

/// The indicators `config` names (its files and the pulled copies of its
/// feeds) scored by its decay policy; `None` when there are none to read.
/// A pulled copy's indicators are from its feed (by the feed's name, as
/// `intel.decay.by_source` names it).
pub fn load_configured(config: &crate::config::IntelConfig, data_dir: &Path) -> Result<Option<Loaded>, IntelFileError> {
    let feed_names: Vec<String> = config.feeds.iter().map(|feed| feed.name.clone()).collect();
    let named = |path: PathBuf| {
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        match feed_names.iter().find(|name| crate::sources::sanitize(name) == stem) {
            Some(name) if path.file_name().is_none_or(|file| file != LOCAL_FILE) => (path, name.clone()),
            _ => (path, "api".to_owned()),
        }
    };
    let mut files = sourced_by_file_name(&config.files);
    files.extend(pulled_files(data_dir, &feed_names).into_iter().map(named));
    if files.is_empty() {
        return Ok(None);
    }
    let mut loaded = load_sourced(&files)?;
    loaded.set.set_policy(config.decay.policy());
    Ok(Some(loaded))
}

/// The copies kept in the data directory of the feeds named (a feed taken
/// out of the configuration is no longer loaded), and the indicators added
/// through the API.
pub fn pulled_files(data_dir: &Path, feeds: &[String]) -> Vec<PathBuf> {
    let wanted: Vec<String> = feeds.iter().map(|name| crate::sources::sanitize(name)).collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(feed_dir(data_dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|extension| ["json", "csv", "txt"].iter().any(|known| extension == *known))
        })
        .filter(|path| {
            path.file_name().is_some_and(|name| name == LOCAL_FILE)
                || path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .is_some_and(|stem| wanted.iter().any(|name| name == stem))
        })
        .collect();
    files.sort();
    files
}

const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Most pages read from a TAXII collection in one pull.
const TAXII_MAX_PAGES: usize = 1_000;

/// Reads the objects a TAXII 2.1 collection added since the last pull
/// (`added_after`, kept beside the copy), page after page (`next`), and
/// returns the kept bundle with them merged in (by id, the newest
/// `modified` winning). `feed.url` is the API root.
async fn taxii_pull(
    feed: &crate::config::FeedConfig,
    collection: &str,
    policy: &crate::fetch::FetchPolicy,
    auth: crate::fetch::Auth<'_>,
    dir: &Path,
) -> Result<(String, Option<(PathBuf, String)>), String> {
    use serde_json::Value;
    let safe_name = crate::sources::sanitize(&feed.name);
    let state_path = dir.join(format!("{safe_name}.taxii-added-after"));
    let added_after = std::fs::read_to_string(&state_path).ok().map(|text| text.trim().to_owned());
    let (root, collection) = taxii_locate(&feed.url, collection, policy, auth).await?;
    let root = root.trim_end_matches('/');
    let mut objects: Vec<Value> = std::fs::read_to_string(dir.join(format!("{safe_name}.json")))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|bundle| bundle.get("objects").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let mut next: Option<String> = None;
    let mut newest_added: Option<String> = added_after.clone();
    let mut positions: std::collections::HashMap<String, usize> = objects
        .iter()
        .enumerate()
        .filter_map(|(position, object)| object.get("id").and_then(Value::as_str).map(|id| (id.to_owned(), position)))
        .collect();
    for _ in 0..TAXII_MAX_PAGES {
        let mut url = reqwest::Url::parse(&format!("{root}/collections/"))
            .map_err(|error| format!("{}: {error}", crate::fetch::redact_url(root)))?;
        // The id is the server's word: one path segment, encoded.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(&collection).push("objects").push("");
        }
        {
            // Encoded: a `next` token may hold `+` or `/`.
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", "1000");
            if let Some(after) = &added_after {
                query.append_pair("added_after", after);
            }
            if let Some(next) = &next {
                query.append_pair("next", next);
            }
        }
        let url = url.to_string();
        let (body, headers) = crate::fetch::fetch_with_headers(&url, policy, auth, Some(TAXII_MEDIA_TYPE))
            .await
            .map_err(|error| error.to_string())?;
        // TAXII says when the page's newest object was added in a header.
        if let Some(added) = headers.get("x-taxii-date-added-last").and_then(|value| value.to_str().ok())
            && newest_added.as_deref().is_none_or(|newest| added > newest)
        {
            newest_added = Some(added.to_owned());
        }
        let envelope: Value = serde_json::from_slice(&body)
            .map_err(|error| format!("{}: not a TAXII envelope: {error}", crate::fetch::redact_url(&url)))?;
        for object in envelope.get("objects").and_then(Value::as_array).into_iter().flatten() {
            let id = object.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            let modified = object.get("modified").and_then(Value::as_str).unwrap_or("");
            match positions.get(&id) {
                Some(&position) => {
                    let known = objects[position].get("modified").and_then(Value::as_str).unwrap_or("");
                    if known <= modified {
                        objects[position] = object.clone();
                    }
                }
                None => {
                    positions.insert(id, objects.len());
                    objects.push(object.clone());
                }
            }
            if let Some(added) = object.get("date_added").and_then(Value::as_str)
                && newest_added.as_deref().is_none_or(|newest| added > newest)
            {
                newest_added = Some(added.to_owned());
            }
        }
        let more = envelope.get("more").and_then(Value::as_bool).unwrap_or(false);
        next = envelope.get("next").and_then(Value::as_str).map(str::to_owned);
        if !more || next.is_none() {
            break;
        }
    }
    let bundle = serde_json::json!({"type": "bundle", "id": format!("bundle--taxii-{safe_name}"), "objects": objects});
    Ok((bundle.to_string(), newest_added.map(|newest| (state_path, newest))))
}

/// The API root and collection id a TAXII feed names. `url` is an API root
/// or the server's discovery endpoint (whose `default` API root, or else
/// its first, is used); `collection` is a collection's id or its title.
async fn taxii_locate(
    url: &str,
    collection: &str,
    policy: &crate::fetch::FetchPolicy,
    auth: crate::fetch::Auth<'_>,
) -> Result<(String, String), String> {
    use serde_json::Value;
    let get = |url: String| async move {
        let body =
            crate::fetch::fetch(&url, policy, auth, Some(TAXII_MEDIA_TYPE)).await.map_err(|error| error.to_string())?;
        serde_json::from_slice::<Value>(&body)
            .map_err(|error| format!("{}: not a TAXII answer: {error}", crate::fetch::redact_url(&url)))
    };
    let base = reqwest::Url::parse(url).map_err(|error| format!("{}: {error}", crate::fetch::redact_url(url)))?;
    let first = get(url.to_owned()).await?;
    let root = match first.get("api_roots").and_then(Value::as_array) {
        // A discovery document: its roots may be relative to it.
        Some(roots) => {
            let chosen = first
                .get("default")
                .and_then(Value::as_str)
                .or_else(|| roots.first().and_then(Value::as_str))
                .ok_or_else(|| format!("{}: the TAXII server lists no API root", crate::fetch::redact_url(url)))?;
            let mut root = base.join(chosen).map_err(|error| format!("API root {chosen:?}: {error}"))?;
            // The feed's credentials go to the server configured, not to
            // wherever its answer points.
            if (root.scheme(), root.host_str(), root.port_or_known_default())
                != (base.scheme(), base.host_str(), base.port_or_known_default())
            {
                return Err(format!(
                    "{}: the API root {} is on another server; configure it as the feed's URL if it is trusted",
                    crate::fetch::redact_url(url),
                    crate::fetch::redact_url(root.as_str())
                ));
            }
            // The configured URL's user info carries over.
            let _ = root.set_username(base.username());
            let _ = root.set_password(base.password());
            root.to_string()
        }
        None => url.to_owned(),
    };
    let root = root.trim_end_matches('/').to_owned();
    let listing = get(format!("{root}/collections/")).await?;
    let collections = listing.get("collections").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let found =
        collections.iter().find(|entry| entry.get("id").and_then(Value::as_str) == Some(collection)).or_else(|| {
            collections.iter().find(|entry| {
                entry.get("title").and_then(Value::as_str).is_some_and(|title| title.eq_ignore_ascii_case(collection))
            })
        });
    let Some(found) = found else {
        let known: Vec<&str> = collections
            .iter()
            .filter_map(|entry| entry.get("title").or_else(|| entry.get("id")).and_then(Value::as_str))
            .collect();
        return Err(format!(
            "{}: no collection {collection:?} (there are: {})",
            crate::fetch::redact_url(&root),
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ));
    };
    if found.get("can_read").and_then(Value::as_bool) == Some(false) {
        return Err(format!("collection {collection:?}: this account cannot read it"));
    }
    let id = found.get("id").and_then(Value::as_str).unwrap_or(collection).to_owned();
    Ok((root, id))
}

/// The indicators the pipeline matches: `intel.files` and the pulled
/// feeds, replaced whole when a pull brings something new (a set that fails
/// to load leaves the running one in place).
pub struct IntelState {
    /// Files, feeds, retro-hunt window and decay policy.
    config: crate::config::IntelConfig,
    data_dir: PathBuf,
    current: std::sync::RwLock<Option<std::sync::Arc<IndicatorSet>>>,
    /// The last pull of each feed.
    feeds: std::sync::Mutex<std::collections::BTreeMap<String, FeedStatus>>,
    /// Changes to the indicators kept by Riposte itself, one at a time.
    local: std::sync::Mutex<()>,
    /// Indicators loaded since the last retro-hunt, by kind and value (ids
    /// change from one set to the next).
    fresh: std::sync::Mutex<Vec<(riposte_intel::IndicatorKind, String)>>,
    /// One load-and-swap at a time, so an older set never replaces a newer one.
    reloading: std::sync::Mutex<()>,
}

/// How a feed's last pull went, for the API.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FeedStatus {
    pub last_attempt_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    pub indicators: Option<usize>,
    pub last_error: Option<String>,
}

/// The file of indicators added through the API (a STIX bundle).
pub const LOCAL_FILE: &str = "local.json";

impl IntelState {
    /// Loads the files and pulled copies there are. Where any indicator
    /// source is configured, stored events keep their observables and new
    /// indicators are looked for in those of the last `retro_hunt_days`.
    pub fn load(config: &crate::config::IntelConfig, data_dir: PathBuf) -> Result<IntelState, IntelFileError> {
        let state = IntelState {
            config: config.clone(),
            data_dir,
            current: std::sync::RwLock::new(None),
            feeds: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            local: std::sync::Mutex::new(()),
            fresh: std::sync::Mutex::new(Vec::new()),
            reloading: std::sync::Mutex::new(()),
        };
        state.reload()?;
        Ok(state)
    }

    /// Whether stored events keep their observables for retro-hunts: when
    /// any indicator source is configured.
    pub fn retro_hunting(&self) -> bool {
        self.retro_hunt_days() > 0
    }

    /// Days of stored events a new indicator is looked for in (0: none).
    fn retro_hunt_days(&self) -> u32 {
        if self.config.is_configured() { self.config.retro_hunt_days } else { 0 }
    }

    /// The running set, if any indicator source is configured.
    pub fn current(&self) -> Option<std::sync::Arc<IndicatorSet>> {
        self.current.read().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    /// The last pull of each feed.
    pub fn feed_status(&self) -> std::collections::BTreeMap<String, FeedStatus> {
        self.feeds.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    fn record_pull(&self, pulled: &[Pulled], now_ms: i64) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|poison| poison.into_inner());
        for feed in pulled {
            let status = feeds.entry(feed.name.clone()).or_default();
            status.last_attempt_ms = Some(now_ms);
            match &feed.outcome {
                Ok(count) => {
                    status.last_success_ms = Some(now_ms);
                    status.indicators = Some(*count);
                    status.last_error = None;
                }
                Err(reason) => status.last_error = Some(reason.clone()),
            }
        }
    }

    /// Adds an indicator to those kept by Riposte itself (or, `revoked`,
    /// revokes it everywhere: a revocation by any source holds), then
    /// reloads. Returns the indicator as kept.
    pub fn keep(&self, indicator: riposte_intel::Indicator) -> Result<riposte_intel::Indicator, String> {
        let _one_at_a_time = self.local.lock().unwrap_or_else(|poison| poison.into_inner());
        let dir = feed_dir(&self.data_dir);
        let path = dir.join(LOCAL_FILE);
        let mut kept = match std::fs::read_to_string(&path) {
            Ok(text) => import_bundle(&text, "api").map_err(|error| format!("{}: {error}", path.display()))?.indicators,
            Err(_) => Vec::new(),
        };
        match kept.iter_mut().find(|known| known.kind == indicator.kind && known.value == indicator.value) {
            Some(known) => known.merge(indicator.clone()),
            None => kept.push(indicator.clone()),
        }
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
        let bundle = riposte_intel::stix::bundle_from_indicators(&kept, &created);
        std::fs::create_dir_all(&dir).map_err(|error| format!("cannot write {}: {error}", dir.display()))?;
        let temporary = path.with_extension("json.new");
        std::fs::write(&temporary, bundle.to_string())
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
        std::fs::rename(&temporary, &path).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        self.reload().map_err(|error| error.to_string())?;
        Ok(kept
            .into_iter()
            .find(|known| known.kind == indicator.kind && known.value == indicator.value)
            .unwrap_or(indicator))
    }

    /// Loads everything again and puts it in place. Returns the indicators loaded.
    pub fn reload(&self) -> Result<usize, IntelFileError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|poison| poison.into_inner());
        let Some(loaded) = load_configured(&self.config, &self.data_dir)? else { return Ok(0) };
        for skipped in loaded.skipped.iter().take(20) {
            tracing::warn!(%skipped, "indicator left out");
        }
        let count = loaded.set.len();
        tracing::info!(indicators = count, "threat intelligence loaded");
        // What was not there before is looked for in stored events.
        let previous = self.current();
        let fresh: Vec<(riposte_intel::IndicatorKind, String)> = match &previous {
            None => Vec::new(),
            Some(previous) => loaded
                .set
                .iter()
                .filter(|(_, indicator)| {
                    !indicator.revoked && previous.exact_id(indicator.kind, &indicator.value).is_none()
                })
                .map(|(_, indicator)| (indicator.kind, indicator.value.clone()))
                .collect(),
        };
        *self.current.write().unwrap_or_else(|poison| poison.into_inner()) = Some(std::sync::Arc::new(loaded.set));
        if !fresh.is_empty() {
            self.fresh.lock().unwrap_or_else(|poison| poison.into_inner()).extend(fresh);
        }
        Ok(count)
    }

    /// The indicators new since the last retro-hunt (taken).
    fn take_fresh(&self) -> Vec<(riposte_intel::IndicatorKind, String)> {
        std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|poison| poison.into_inner()))
    }

    /// Looks for the indicators new since the last call in the stored events
    /// of the retro-hunt window; each event holding one becomes an alert
    /// (`Retro-hunt: ...`). Returns the detections recorded.
    pub async fn retro_hunt(&self, store: &riposte_store::AnyStore) -> Result<usize, riposte_store::StoreError> {
        let days = self.retro_hunt_days();
        use riposte_store::{ObservableSearch, Store};
        let fresh = self.take_fresh();
        let Some(set) = self.current() else { return Ok(0) };
        if fresh.is_empty() || days == 0 {
            return Ok(0);
        }
        // Their ids in the set running now.
        let fresh: Vec<riposte_intel::IndicatorId> =
            fresh.iter().filter_map(|(kind, value)| set.exact_id(*kind, value)).collect();
        let mut search = ObservableSearch::default();
        for sought in fresh.iter().flat_map(|&id| riposte_intel::sought(set.get(id))) {
            match sought {
                riposte_intel::Sought::Value(value) => search.values.push(value),
                riposte_intel::Sought::Range(low, high) => search.ranges.push((low, high)),
            }
        }
        if search.is_empty() {
            return Ok(0);
        }
        let now = crate::pipeline::now_ms();
        let since = now.saturating_sub(i64::from(days) * 86_400_000);
        let events = store.events_with_observables(&search, since).await?;
        let mut decoder = riposte_event::JsonDecoder::new();
        let mut event = riposte_event::Event::new();
        let mut hits = Vec::new();
        let mut detections = Vec::new();
        for stored in &events {
            if decoder.decode_value(&stored.body, &mut event).is_err() {
                continue;
            }
            hits.clear();
            riposte_intel::match_event(&set, &event, now, &mut hits);
            for hit in hits.iter().filter(|hit| hit.indicators.iter().any(|id| fresh.contains(id))) {
                let mut described = riposte_intel::describe(&set, hit, now);
                described.title = format!("Retro-hunt: {}", described.title);
                let seq = u64::try_from(stored.seq).unwrap_or(0);
                detections.push(crate::alert::intel_detection(described, &event, seq, "", stored.received_ms, 0));
            }
        }
        if detections.is_empty() {
            return Ok(0);
        }
        let recorded = store.record(&detections, &[], None).await?;
        tracing::info!(events = events.len(), alerts = recorded.created, "retro-hunt of new indicators");
        Ok(detections.len())
    }
}

/// Pulls every feed now and then each `every` (the shortest of the feeds'),
/// and reloads the set after a pull that brought something. Runs until `stop`.
pub async fn keep_pulling(
    state: std::sync::Arc<IntelState>,
    feeds: Vec<crate::config::FeedConfig>,
    data_dir: PathBuf,
    store: riposte_store::AnyStore,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering;
    let Some(every) = feeds.iter().map(|feed| feed.every).min() else { return };
    let every = every.max(std::time::Duration::from_secs(1));
    loop {
        let pulled = pull(&feeds, &data_dir, |_| {}).await;
        state.record_pull(&pulled, crate::pipeline::now_ms());
        for feed in &pulled {
            if let Err(reason) = &feed.outcome {
                metrics.intel_pull_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(feed = %feed.name, %reason, "feed not pulled; its last good copy stays");
            }
        }
        if pulled.iter().any(|feed| feed.outcome.is_ok()) {
            // Reading a million indicators takes seconds: not on the async workers.
            let reloading = state.clone();
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(count)) => metrics.intel_indicators.store(count as u64, Ordering::Relaxed),
                Ok(Err(error)) => tracing::warn!(%error, "pulled feeds did not load; the running indicators stay"),
                Err(error) => tracing::warn!(%error, "loading the pulled feeds stopped; the running indicators stay"),
            }
            if let Err(error) = state.retro_hunt(&store).await {
                tracing::warn!(%error, "retro-hunt failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Most events read from a MISP feed or MISP instance in one pull.
const MISP_MAX_EVENTS: usize = 10_000;
/// Events asked of a MISP instance a page.
const MISP_API_PAGE: usize = 100;

/// A MISP event's uuid (`{"Event": {"uuid": ...}}`).
fn misp_uuid(event: &serde_json::Value) -> Option<&str> {
    event.get("Event")?.get("uuid")?.as_str()
}

/// When a MISP event last changed (its `timestamp`: seconds, as a number
/// or a string), in milliseconds.
fn misp_changed_ms(event: &serde_json::Value) -> Option<i64> {
    match event.get("Event")?.get("timestamp")? {
        serde_json::Value::String(text) => riposte_intel::feed::parse_time(text),
        serde_json::Value::Number(number) => number.as_i64().and_then(|seconds| seconds.checked_mul(1000)),
        _ => None,
    }
}

/// Reads the events a MISP instance changed since the last pull through its
/// REST API (`POST /events/restSearch`, `timestamp` since the newest event
/// kept, `page` by `page`), merged into the kept list of events by uuid
/// (the newer `timestamp` winning). `feed.url` is the instance's base URL
/// and `feed.token` its API key. A page that fails fails the pull: the last
/// good copy and its state stay as they were.
async fn misp_api_pull(
    feed: &crate::config::FeedConfig,
    policy: &crate::fetch::FetchPolicy,
    dir: &Path,
) -> Result<(String, Option<(PathBuf, String)>), String> {
    use serde_json::Value;
    let key = feed.token.as_deref().ok_or("a MISP instance needs its API key as `token`")?;
    let auth = crate::fetch::Auth::Key(key);
    let base = feed.url.trim_end_matches('/');
    let safe_name = crate::sources::sanitize(&feed.name);
    let state_path = dir.join(format!("{safe_name}.misp-timestamp"));
    let since: Option<i64> = std::fs::read_to_string(&state_path).ok().and_then(|text| text.trim().parse().ok());
    let mut events: Vec<Value> = std::fs::read_to_string(dir.join(format!("{safe_name}.json")))
        .ok()
        .and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
        .unwrap_or_default();
    let mut positions: std::collections::HashMap<String, usize> = events
        .iter()
        .enumerate()
        .filter_map(|(position, event)| misp_uuid(event).map(|uuid| (uuid.to_owned(), position)))
        .collect();
    let url = format!("{base}/events/restSearch");
    let mut newest = since;
    // Pages are not in time order: the state moves on only once every
    // changed event was read.
    let mut complete = false;
    for page in 1..=MISP_MAX_EVENTS / MISP_API_PAGE {
        let mut search = serde_json::json!({"returnFormat": "json", "page": page, "limit": MISP_API_PAGE});
        if let Some(since) = since {
            search["timestamp"] = since.into();
        }
        let body = crate::fetch::post_json(&url, policy, auth, &search).await.map_err(|error| error.to_string())?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|error| format!("{}: page {page} is not JSON: {error}", crate::fetch::redact_url(&url)))?;
        // `{"response": [...]}`, or the list itself.
        let listed = answer
            .get("response")
            .unwrap_or(&answer)
            .as_array()
            .ok_or_else(|| format!("{}: page {page} is not a list of events", crate::fetch::redact_url(&url)))?;
        for event in listed {
            let Some(uuid) = misp_uuid(event) else { continue };
            let changed = misp_changed_ms(event);
            if let Some(seconds) = changed.map(|ms| ms / 1000) {
                newest = Some(newest.map_or(seconds, |newest| newest.max(seconds)));
            }
            match positions.get(uuid) {
                Some(&position) => {
                    if misp_changed_ms(&events[position]) <= changed {
                        events[position] = event.clone();
                    }
                }
                None => {
                    positions.insert(uuid.to_owned(), events.len());
                    events.push(event.clone());
                }
            }
        }
        if listed.len() < MISP_API_PAGE {
            complete = true;
            break;
        }
    }
    if !complete {
        tracing::warn!(feed = %feed.name, events = MISP_MAX_EVENTS, "more events changed than one pull reads; the next pull asks again from the same time");
    }
    let state = newest.filter(|_| complete).map(|newest| (state_path, newest.to_string()));
    Ok((Value::Array(events).to_string(), state))
}

/// Reads a MISP feed directory: its `manifest.json`, then every event
/// changed since the last pull (`<uuid>.json`), merged into the kept list of
/// events by uuid. `feed.url` is the feed's base.
async fn misp_feed_pull(
    feed: &crate::config::FeedConfig,
    policy: &crate::fetch::FetchPolicy,
    auth: crate::fetch::Auth<'_>,
    dir: &Path,
) -> Result<String, String> {
    use serde_json::Value;
    let base = feed.url.trim_end_matches('/');
    let safe_name = crate::sources::sanitize(&feed.name);
    let manifest = crate::fetch::fetch(&format!("{base}/manifest.json"), policy, auth, None)
        .await
        .map_err(|error| error.to_string())?;
    let listed = riposte_intel::misp::manifest(&String::from_utf8_lossy(&manifest))
        .map_err(|error| format!("manifest.json: {error}"))?;
    let mut events: Vec<Value> = std::fs::read_to_string(dir.join(format!("{safe_name}.json")))
        .ok()
        .and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
        .unwrap_or_default();
    // Events no longer listed are gone from the feed.
    events.retain(|event| misp_uuid(event).is_some_and(|uuid| listed.contains_key(uuid)));
    let mut fetched = 0;
    for (uuid, changed) in &listed {
        // Uuids are the feed's data: only plain ones make a URL.
        if !uuid.bytes().all(|byte| byte.is_ascii_hexdigit() || byte == b'-') {
            continue;
        }
        let known = events.iter().position(|event| misp_uuid(event) == Some(uuid.as_str()));
        if let Some(position) = known
            && changed.is_some()
            && misp_changed_ms(&events[position]) >= *changed
        {
            continue;
        }
        if fetched >= MISP_MAX_EVENTS {
            break;
        }
        let body = crate::fetch::fetch(&format!("{base}/{uuid}.json"), policy, auth, None)
            .await
            .map_err(|error| error.to_string())?;
        let event: Value = serde_json::from_slice(&body).map_err(|error| format!("{uuid}.json: {error}"))?;
        fetched += 1;
        match known {
            Some(position) => events[position] = event,
            None => events.push(event),
        }
    }
    Ok(Value::Array(events).to_string())
}
