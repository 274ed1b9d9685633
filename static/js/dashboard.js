// The learning dashboard's charts (Chart.js, vendored) and live refresh.
// The server renders every figure as text and tables; this adds charts and,
// every few seconds (faster while a run is in flight), swaps in the fresh
// live part of the page (?part=live) and redraws.

const live = document.querySelector('[data-testid="dashboard-live"]');
const charts = [];
const COLOURS = ["#4f46e5", "#0f766e", "#b45309", "#be185d", "#1d4ed8", "#4d7c0f", "#7c3aed"];
const percent = (value) => (value === null || value === undefined ? null : Math.round(value * 1000) / 10);

Chart.defaults.animation = false;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

function draw() {
  while (charts.length) charts.pop().destroy();
  const data = JSON.parse(live.querySelector("#chart-data").textContent);
  const rates = live.querySelector('[data-chart="rates"]');
  if (rates && data.versions.length) charts.push(ratesChart(rates, data.versions));
  const daily = live.querySelector('[data-chart="daily"]');
  if (daily && data.daily.dates.length) charts.push(dailyChart(daily, data.daily));
  for (const canvas of live.querySelectorAll('[data-chart="loss"]')) {
    const run = data.runs.find((item) => String(item.id) === canvas.dataset.run);
    if (run?.loss.length) charts.push(lossChart(canvas, run.loss));
  }
}

function axis(title, extra = {}) {
  return { title: { display: true, text: title }, ...extra };
}

function ratesChart(canvas, versions) {
  return new Chart(canvas, {
    data: {
      labels: versions.map((row) => row.name),
      datasets: [
        {
          type: "bar", label: "95% interval", backgroundColor: "rgba(79, 70, 229, 0.25)",
          data: versions.map((row) => [percent(row.low), percent(row.high)]),
        },
        {
          type: "line", label: "Thumbs-up rate", showLine: false, pointRadius: 6,
          borderColor: "#4f46e5", backgroundColor: "#4f46e5",
          data: versions.map((row) => percent(row.up_rate)),
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      scales: {
        x: axis("Model version"),
        y: axis("Thumbs up (%)", { min: 0, max: 100 }),
      },
      plugins: {
        tooltip: {
          callbacks: {
            afterBody: (items) => `${versions[items[0].dataIndex].ratings} ratings`,
          },
        },
      },
    },
  });
}

function dailyChart(canvas, daily) {
  const datasets = Object.entries(daily.series).map(([name, days], index) => ({
    label: name,
    data: daily.dates.map((day) => percent(days[day]?.up_rate)),
    borderColor: COLOURS[index % COLOURS.length],
    backgroundColor: COLOURS[index % COLOURS.length],
    spanGaps: true,
  }));
  return new Chart(canvas, {
    type: "line",
    data: { labels: daily.dates, datasets },
    options: {
      maintainAspectRatio: false,
      scales: { x: axis("Day (UTC)"), y: axis("Thumbs up (%)", { min: 0, max: 100 }) },
    },
  });
}

function lossChart(canvas, points) {
  const stages = [...new Set(points.map((point) => point.stage))];
  const datasets = stages.map((stage, index) => ({
    label: stage || "loss",
    data: points.map((point, at) => (point.stage === stage ? { x: at + 1, y: point.loss } : null))
      .filter(Boolean),
    borderColor: COLOURS[index % COLOURS.length],
    backgroundColor: COLOURS[index % COLOURS.length],
    pointRadius: 0,
  }));
  return new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: { x: axis("Logged step", { type: "linear" }), y: axis("Loss") },
    },
  });
}

// "Run 5 queued…" stays only while run 5 is queued or running: its card shows the verdict.
function clearEndedRunMessages() {
  for (const item of document.querySelectorAll('[data-testid="dashboard-messages"] [data-about^="run-"]')) {
    const card = live.querySelector(`[data-testid="run"][data-run-id="${item.dataset.about.slice(4)}"]`);
    if (card && !["queued", "running"].includes(card.dataset.status)) item.remove();
  }
  const list = document.querySelector('[data-testid="dashboard-messages"]');
  if (list && !list.children.length) list.remove();
}

async function refresh() {
  try {
    const response = await fetch(live.dataset.liveUrl, { credentials: "same-origin" });
    if (response.ok) {
      const focused = document.activeElement?.dataset?.testid;
      live.innerHTML = await response.text();  // our own escaped template
      if (focused) live.querySelector(`[data-testid="${focused}"]`)?.focus();
      clearEndedRunMessages();
      draw();
    }
  } finally {
    const busy = live.querySelector('[data-testid="train-busy"]');
    window.setTimeout(refresh, busy ? 2000 : 10000);
  }
}

draw();
window.setTimeout(refresh, live.querySelector('[data-testid="train-busy"]') ? 2000 : 10000);
