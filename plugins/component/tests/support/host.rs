//! An in-process component host on the `wasmtime` crate (the same runtime, 48.0.8, as the
//! wasmtime CLI): loads `kaudit-component.wasm`, links WASI p2 and drives the `engine` resource
//! across many calls. Used by the tests and by the `hosts` benchmark.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "audit",
    path: "../../wit",
});

#[allow(unused_imports)] // each user takes what it needs
pub use exports::kaudit::audit::types::*;

/// What the store holds: the WASI context the component's std needs.
pub struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// The component compiled once, ready to instantiate many times.
pub struct Loaded {
    engine: Engine,
    component: Component,
    linker: Linker<State>,
}

impl Loaded {
    pub fn new(wasm: &Path) -> Loaded {
        let mut config = wasmtime::Config::new();
        // Compiling the component dominates a debug-build test run (about a minute on a busy
        // 2-core machine): reuse compiled code across runs through wasmtime's own cache (the one
        // the wasmtime CLI uses, keyed by the component's bytes and the compiler settings).
        match wasmtime::Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => eprintln!("wasmtime compilation cache unavailable ({e}); compiling from scratch"),
        }
        let engine = Engine::new(&config).expect("wasmtime engine");
        let component = Component::from_file(&engine, wasm).unwrap_or_else(|e| panic!("{}: {e:?}", wasm.display()));
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI p2 linker");
        Loaded { engine, component, linker }
    }

    /// A fresh instance; `preopen` = (host dir, guest path) for configs that refer to files.
    pub fn instantiate(&self, preopen: Option<(&Path, &str)>) -> Instance {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        if let Some((host, guest)) = preopen {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .unwrap_or_else(|e| panic!("preopen {}: {e:?}", host.display()));
        }
        let mut store = Store::new(&self.engine, State { ctx: wasi.build(), table: ResourceTable::new() });
        let audit =
            Audit::instantiate(&mut store, &self.component, &self.linker).expect("instantiate kaudit-component");
        Instance { store, audit }
    }
}

/// One instance of the component: engines live in it, the `lines` functions run in it.
pub struct Instance {
    store: Store<State>,
    audit: Audit,
}

/// An `engine` resource owned by the host (dropped explicitly with [`Instance::drop_engine`]).
#[derive(Clone, Copy)]
pub struct EngineRef(ResourceAny);

impl Instance {
    pub fn create(&mut self, config: &str) -> Result<EngineRef, Vec<ConfigError>> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_create(&mut self.store, config).expect("engine.create trapped").map(EngineRef)
    }

    pub fn create_named(&mut self, config: &str, name: &str) -> Result<EngineRef, Vec<ConfigError>> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_create_named(&mut self.store, config, name).expect("engine.create-named trapped").map(EngineRef)
    }

    pub fn warnings(&mut self, e: EngineRef) -> Vec<ConfigError> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_warnings(&mut self.store, e.0).expect("engine.warnings trapped")
    }

    pub fn process(&mut self, e: EngineRef, event: &[u8]) -> Outcome {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_process(&mut self.store, e.0, event).expect("engine.process trapped")
    }

    pub fn process_batch(&mut self, e: EngineRef, body: &[u8]) -> BatchResult {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_process_batch(&mut self.store, e.0, body).expect("engine.process-batch trapped")
    }

    pub fn explain(&mut self, e: EngineRef, event: &[u8]) -> Result<Decision, Error> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_explain(&mut self.store, e.0, event).expect("engine.explain trapped")
    }

    pub fn explain_batch(&mut self, e: EngineRef, input: &[u8]) -> Vec<Explanation> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_explain_batch(&mut self.store, e.0, input).expect("engine.explain-batch trapped")
    }

    pub fn take_alerts(&mut self, e: EngineRef) -> Vec<String> {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_take_alerts(&mut self.store, e.0).expect("engine.take-alerts trapped")
    }

    pub fn counters(&mut self, e: EngineRef) -> Counters {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_counters(&mut self.store, e.0).expect("engine.counters trapped")
    }

    pub fn alert_stats(&mut self, e: EngineRef) -> AlertStats {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_alert_stats(&mut self.store, e.0).expect("engine.alert-stats trapped")
    }

    pub fn metrics_json(&mut self, e: EngineRef) -> String {
        let api = self.audit.kaudit_audit_pipeline().engine();
        api.call_metrics_json(&mut self.store, e.0).expect("engine.metrics-json trapped")
    }

    pub fn drop_engine(&mut self, e: EngineRef) {
        e.0.resource_drop(&mut self.store).expect("engine drop trapped");
    }

    pub fn run_lines(&mut self, config: &str, input: &str) -> Result<String, Vec<Error>> {
        let api = self.audit.kaudit_audit_lines();
        api.call_run_lines(&mut self.store, config, input).expect("run-lines trapped")
    }

    pub fn filter_lines(&mut self, config: &str, input: &str) -> Result<String, Vec<Error>> {
        let api = self.audit.kaudit_audit_lines();
        api.call_filter_lines(&mut self.store, config, input).expect("filter-lines trapped")
    }

    pub fn explain_lines(&mut self, config: &str, input: &str) -> Result<String, Vec<Error>> {
        let api = self.audit.kaudit_audit_lines();
        api.call_explain_lines(&mut self.store, config, input).expect("explain-lines trapped")
    }

    pub fn alert_lines(&mut self, config: &str, input: &str) -> Result<String, Vec<Error>> {
        let api = self.audit.kaudit_audit_lines();
        api.call_alert_lines(&mut self.store, config, input).expect("alert-lines trapped")
    }
}
