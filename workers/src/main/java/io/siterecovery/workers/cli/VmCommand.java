package io.siterecovery.workers.cli;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.vm.QuiesceHooks;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "vm", description = "Manage VMs on a site's agent.",
    subcommands = {VmCommand.Create.class, VmCommand.ListVms.class, VmCommand.QuiesceHook.class})
final class VmCommand {

  static AgentClient agent(SiteRecoveryConfig config, String site) {
    String url = config.sites().get(site);
    if (url == null) {
      throw new IllegalArgumentException("unknown site '" + site + "'; configured: "
          + config.sites().keySet());
    }
    return new AgentClient(url, config.operatorCredentials(), Identity.site(site));
  }

  @Command(name = "create", description = "Create a running VM with raw disks, exported over NBD.")
  static final class Create implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String name;

    @Option(names = "--site", required = true, description = "site to create it on")
    String site;

    @Option(names = "--disk", required = true, description = "disk size, e.g. 1G; repeat for more disks")
    List<String> disks;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      SiteRecoveryConfig config = options.resolve();
      VmRecord vm = agent(config, site).createVm(name, disks.stream().map(Sizes::parse).toList());
      String nbd = site.equals("primary") ? "10809" : "10810";
      output.print(new SiteVm(site, vm), () -> {
        StringBuilder b = new StringBuilder(String.format("created %s on %s:", vm.name(), site));
        vm.disks().forEach(d -> b.append(String.format("%n  %s  %s  nbd://127.0.0.1:%s/%s/%s",
            d.name(), Sizes.format(d.sizeBytes()), nbd, vm.name(), d.name())));
        return b.toString();
      });
      return 0;
    }
  }

  @Command(name = "quiesce-hook", description = "Set the command the agent runs before an "
      + "app-consistent recovery point (e.g. fsfreeze, a database flush); it gets "
      + "SITE_RECOVERY_VM in its environment. Local configuration: written into the agent's data "
      + "directory on this host, never sent over the network. Without a command, removes it.")
  static final class QuiesceHook implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String name;

    @Option(names = "--data", required = true,
        description = "data directory of the agent that runs the VM (on this host)")
    Path data;

    @Option(names = "--timeout", defaultValue = "30", description = "seconds (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Parameters(index = "1..*", arity = "0..*", description = "command and arguments (after --)")
    List<String> command;

    @Mixin
    OutputOptions output;

    /** The JSON of the hook as set: null command once removed. */
    record HookSet(String vm, List<String> command, Integer timeoutSeconds, String file) {}

    @Override
    public Integer call() throws IOException {
      if (!Files.isDirectory(data.resolve("vms").resolve(name))) {
        throw new IllegalArgumentException("no VM " + name + " in " + data.resolve("vms")
            + ": --data is the agent's data directory on this host");
      }
      QuiesceHooks.Hook hook = command == null || command.isEmpty() ? null
          : new QuiesceHooks.Hook(command, timeoutSeconds);
      QuiesceHooks.set(data, name, hook);
      output.print(new HookSet(name, hook == null ? null : command,
          hook == null ? null : timeoutSeconds, QuiesceHooks.file(data, name).toString()),
          () -> hook == null ? "quiesce hook of " + name + " removed"
              : "quiesce hook of " + name + ": " + String.join(" ", command) + " (timeout "
                  + timeoutSeconds + " s), in " + QuiesceHooks.file(data, name));
      return 0;
    }
  }

  /** A VM as one site's agent has it: the JSON of {@code vm list} and {@code vm create}. */
  record SiteVm(String site, VmRecord vm) {}

  @Command(name = "list", description = "List VMs on every configured site.")
  static final class ListVms implements Callable<Integer> {
    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      SiteRecoveryConfig config = options.resolve();
      List<SiteVm> all = new ArrayList<>();
      for (String site : config.sites().keySet()) {
        agent(config, site).listVms().forEach(vm -> all.add(new SiteVm(site, vm)));
      }
      output.print(all, () -> all.stream().map(v -> String.format("%-10s %-16s %-12s %-8s %d "
          + "disk(s)%s", v.site(), v.vm().name(), v.vm().role(), v.vm().power(),
          v.vm().disks().size(), v.vm().replica() != null ? "  replica at generation "
              + v.vm().replica().appliedGeneration() : "")).collect(Collectors.joining("\n")));
      return 0;
    }
  }
}
