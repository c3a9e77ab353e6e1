package io.siterecovery.workers.boot;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.stream.Collectors;
import org.springframework.boot.context.event.ApplicationEnvironmentPreparedEvent;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.ApplicationListener;
import org.springframework.core.env.Environment;
import org.springframework.validation.MapBindingResult;
import java.util.List;
import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Import;

/**
 * {@code site-recovery worker}: a Spring Boot application on Temporal's starter. Connection,
 * namespace, TLS, task queue, registrations and tuning are in application.yml (overridable by the
 * environment); our own settings are {@link SiteRecoveryProperties}. The CLI's other verbs never
 * come here, so they start as fast as before.
 */
@SpringBootConfiguration
@EnableAutoConfiguration
@EnableConfigurationProperties(SiteRecoveryProperties.class)
@Import({WorkerBeans.class, WorkerHealth.class, MonitorAccess.class, TemporalTls.class})
public class WorkerApplication {

  /**
   * Starts the worker; {@code properties} are set as on the command line, above the environment
   * and application.yml.
   */
  public static ConfigurableApplicationContext start(Map<String, String> properties) {
    // Our logback configuration (a log file, the terminal with --verbose) stays as it is.
    System.setProperty("org.springframework.boot.logging.LoggingSystem", "none");
    List<String> args = new ArrayList<>();
    properties.forEach((key, value) -> args.add("--" + key + "=" + value));
    SpringApplication application = new SpringApplication(WorkerApplication.class);
    application.addListeners((ApplicationListener<ApplicationEnvironmentPreparedEvent>)
        event -> checkSettings(event.getEnvironment()));
    return application.run(args.toArray(String[]::new));
  }

  /**
   * The {@code site-recovery.*} settings, checked before anything starts (the web server reads
   * the certificates early), each bad one named by its key.
   */
  static void checkSettings(Environment environment) {
    SiteRecoveryProperties settings = Binder.get(environment)
        .bindOrCreate("site-recovery", SiteRecoveryProperties.class);
    MapBindingResult errors = new MapBindingResult(new HashMap<>(), "site-recovery");
    settings.validate(settings, errors);
    if (errors.hasErrors()) {
      throw new IllegalStateException("the worker's settings are not usable:\n" + errors
          .getFieldErrors().stream().map(e -> "  site-recovery." + e.getField() + ": "
              + e.getDefaultMessage()).collect(Collectors.joining("\n")));
    }
  }
}
