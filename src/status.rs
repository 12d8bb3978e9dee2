//! `fluxbase status`: the URLs and keys of the server using a data directory.

use serde_json::json;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::keys::Keys;

/// Prints the status; `json` prints one JSON object.
pub fn print(config: &Config, json: bool) -> Result<(), String> {
    let data_dir = DataDir::existing(&config.data_dir)
        .map_err(|_| format!("no Fluxbase data directory at {}; start one with `fluxbase serve`", config.data_dir.display()))?;
    let state = data_dir
        .read_state()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no server has run with data directory {} yet", data_dir.path().display()))?;
    let keys = Keys::load_config(&config.jwt, &data_dir).map_err(|e| e.to_string())?;
    let running = data_dir.is_locked();
    if json {
        let out = json!({
            "api_url": state.api_url,
            "db_url": state.db_url,
            "anon_key": keys.anon,
            "service_role_key": keys.service_role,
            "jwt_secret": keys.secret(),
            "version": crate::VERSION,
            "server_version": state.version,
            "running": running,
            "pid": state.pid,
            "embedded": state.embedded,
            "started_at": state.started_at,
            "data_dir": data_dir.path(),
        });
        println!("{out}");
    } else {
        println!("Fluxbase {} ({})", state.version, if running { "running" } else { "not running" });
        println!("  API URL:          {}", state.api_url);
        println!("  DB URL:           {}", state.db_url);
        println!("  anon key:         {}", keys.anon);
        println!("  service_role key: {}", keys.service_role);
        println!("  JWT secret:       {}", keys.secret());
    }
    Ok(())
}
