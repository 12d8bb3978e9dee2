// Compile-time checks of the public types (`npm run typecheck`; never run).
import { createClient, memoryStorage, ResnapshotRequiredError, type Change, type FluxbaseClient } from '../dist/index.js';

type Database = {
  public: {
    Tables: {
      todos: {
        Row: { id: number; title: string };
        Insert: { id?: number; title: string };
        Update: { id?: number; title?: string };
        Relationships: [];
      };
    };
    Views: {};
    Functions: {};
    Enums: {};
    CompositeTypes: {};
  };
};

export async function typed(): Promise<void> {
  const c: FluxbaseClient<Database> = createClient<Database>('http://localhost:54321', 'key', { fluxbase: { storage: memoryStorage() } });
  const { data } = await c.from('todos').select('id, title');
  const titles: string[] = (data ?? []).map((r) => r.title);
  void titles;
  const sub = c.subscribeChanges<Database['public']['Tables']['todos']['Row']>({
    table: 'todos',
    onChange: async (ch: Change<{ id: number; title: string }>) => {
      const t: string | undefined = ch.record?.title;
      void t;
    },
    onError: (e) => {
      if (e instanceof ResnapshotRequiredError) {
        const r: 'gap' | 'position_expired' = e.reason;
        void r;
      }
    },
  });
  const p: string | null = sub.position();
  void p;
  const w: { lsn: string | null } = await c.waitFor(undefined, { timeoutMs: 1000 });
  void w;
  const untyped = createClient('http://localhost:54321', 'key');
  await untyped.from('anything').select('*');
  untyped.auth.onAuthStateChange(() => {});
}
