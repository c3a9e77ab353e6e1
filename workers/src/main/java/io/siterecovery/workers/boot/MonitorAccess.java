package io.siterecovery.workers.boot;

import io.siterecovery.agent.security.Identity;
import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.security.cert.X509Certificate;
import java.util.Optional;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Who may read the worker's health and metrics: TLS already demands a certificate from the
 * deployment's CA (application.yml, {@code client-auth: need}); of those, only the {@code monitor}
 * (Prometheus, probes) and the {@code operator}. A site's agent certificate, or the worker's own,
 * gets 403: a stolen agent key should not map the deployment.
 */
@Configuration(proxyBeanMethods = false)
class MonitorAccess {
  static final String CERTIFICATES = "jakarta.servlet.request.X509Certificate";

  @Bean
  FilterRegistrationBean<Filter> monitorOrOperatorOnly() {
    Filter filter = (request, response, chain) -> {
      Optional<Identity> caller = callerOf((HttpServletRequest) request);
      if (caller.isPresent() && (caller.get().isMonitor() || caller.get().isOperator())) {
        chain.doFilter(request, response);
        return;
      }
      HttpServletResponse http = (HttpServletResponse) response;
      http.setStatus(HttpServletResponse.SC_FORBIDDEN);
      http.setContentType("text/plain;charset=UTF-8");
      http.getWriter().println(caller.map(id -> id + " may not read the worker's health or metrics")
          .orElse("the client certificate names no site-recovery identity")
          + "; use the monitor or the operator certificate");
    };
    FilterRegistrationBean<Filter> registration = new FilterRegistrationBean<>(filter);
    registration.addUrlPatterns("/*");
    registration.setOrder(Integer.MIN_VALUE);
    return registration;
  }

  static Optional<Identity> callerOf(HttpServletRequest request) {
    Object chain = request.getAttribute(CERTIFICATES);
    return chain instanceof X509Certificate[] certificates && certificates.length > 0
        ? Identity.of(certificates[0]) : Optional.empty();
  }
}
